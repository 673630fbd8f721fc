"""docs/register-reference.md is the output of onboarding/reference.py, and every field of
the register and of every protocol has a meaning to show there."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from common.protocols import PROTOCOLS
from onboarding.reference import PARTS, render

PAGE = Path(__file__).parents[2] / "docs" / "register-reference.md"
MODELS: list[type[BaseModel]] = [
    *(model for _, model, _ in PARTS),
    *(p.source for p in PROTOCOLS),
    *(p.binding for p in PROTOCOLS),
]


def test_the_committed_reference_is_what_the_models_generate() -> None:
    assert PAGE.read_text(encoding="utf-8") == render(), (
        "docs/register-reference.md is stale: python -m onboarding.reference > "
        "docs/register-reference.md"
    )


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_field_says_what_it_means(model: type[BaseModel]) -> None:
    shown = {name for name in model.model_fields if name not in ("binding", "kind")}
    if model in [p.source for p in PROTOCOLS]:
        shown.add("kind")
    silent = sorted(name for name in shown if not model.model_fields[name].description)
    assert not silent, f"{model.__name__}: fields without a docstring: {silent}"


def test_every_protocol_has_its_sections() -> None:
    page = render()
    for protocol in PROTOCOLS:
        assert f"### `kind: {protocol.kind}`: source" in page
        assert f"### `kind: {protocol.kind}`: signal fields" in page
