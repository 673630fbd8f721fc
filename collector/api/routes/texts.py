"""Texts for people in their language: the register's names, what the codes mean."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from collector.api.language import lang_param
from collector.api.models import NamesOut, TermsOut
from collector.api.runtime import Runtime
from collector.i18n import Lang, display_name
from collector.i18n.page import page_catalogue
from common.register import Enterprise, Line, Plant, Process

LangParam = Annotated[Lang, Depends(lang_param)]


def _named(lang: Lang, item: Enterprise | Plant | Line | Process) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": display_name(lang, item.names, item.name, item.id),
        "names": dict(item.names),
    }


def _process(lang: Lang, process: Process) -> dict[str, Any]:
    return {
        **_named(lang, process),
        "equipment": display_name(lang, process.equipment_names, process.equipment),
        "equipment_names": dict(process.equipment_names),
    }


def router(runtime: Runtime) -> APIRouter:
    r = APIRouter(prefix="/api/v1", tags=["texts"])

    @r.get("/names")
    async def names(lang: LangParam) -> NamesOut:
        """The register's names of every enterprise, plant, line and process (and the
        processes' equipment) in the language asked for, in register order."""
        enterprises = []
        for register in sorted(runtime.kpi.registers, key=lambda reg: reg.enterprise_id):
            model = register.model
            enterprises.append(
                {
                    **_named(lang, model.enterprise),
                    "register_version": register.version,
                    "plants": [
                        {
                            **_named(lang, plant),
                            "lines": [
                                {
                                    **_named(lang, line),
                                    "processes": [_process(lang, p) for p in line.processes],
                                }
                                for line in plant.lines
                            ],
                        }
                        for plant in model.plants
                    ],
                }
            )
        return NamesOut.model_validate({"lang": lang, "enterprises": enterprises})

    @r.get("/terms")
    async def terms(lang: LangParam) -> TermsOut:
        """What each reason code, status and scope means: a short label, and for a reason
        what to fix. The codes in every other answer stay as they are."""
        catalogue = page_catalogue(lang)
        return TermsOut.model_validate(
            {key: catalogue[key] for key in ("lang", "reasons", "statuses", "scopes")}
        )

    return r
