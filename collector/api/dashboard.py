"""The dashboard: one static page (HTML, CSS, vanilla JS) that reads the ``/api`` routes.

The files are served as they are in the package (no build step). The page itself and its
assets are open like ``/health``: they hold no data, and every number comes from the API,
which asks for a token when tokens are configured.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from collector.api.errors import ApiError
from collector.i18n import parse_lang
from collector.i18n.page import page_catalogue

STATIC = Path(__file__).parent / "static"
PAGE = STATIC / "index.html"


def install(app: FastAPI) -> None:
    """Serve the page at ``/`` and ``/dashboard``, its assets under ``/static``, its texts
    per language under ``/i18n``."""
    if not PAGE.is_file():
        # A wheel built without the package data: fail at start, not on the first visit.
        raise RuntimeError(f"dashboard page missing: {PAGE} (is package-data installed?)")
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    @router.get("/dashboard")
    async def page() -> FileResponse:
        # no-cache: a new collector version's page is picked up without a forced reload.
        return FileResponse(PAGE, headers={"Cache-Control": "no-cache"})

    @router.get("/i18n/{lang}.json")
    async def page_texts(lang: str) -> JSONResponse:
        """The page's texts in one language (the gettext catalogue as JSON)."""
        try:
            chosen = parse_lang(lang)
        except ValueError as exc:
            raise ApiError(404, "not_found", str(exc), field="lang") from None
        return JSONResponse(page_catalogue(chosen), headers={"Cache-Control": "no-cache"})

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
