"""The collector's FastAPI app: routes by concern, one error shape, optional bearer tokens.

``/health``, ``/ready``, ``/metrics`` and the dashboard page (``/``, ``/dashboard``,
``/static``) are always open; every ``/api/*`` route needs a
token when ``COLLECTOR_API__TOKENS`` is set (see ``auth.py``, ``docs/api.md``).
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

from collector.api import dashboard, errors
from collector.api.auth import require_token
from collector.api.models import ERROR_RESPONSES
from collector.api.routes import export, history, kpi, ops, report_doc, texts
from collector.api.runtime import Runtime
from collector.i18n import LANGS, catalogue_of
from collector.settings import ApiSettings
from common.version import VERSION

__all__ = ["Runtime", "create_app"]


def create_app(runtime: Runtime, settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    app = FastAPI(
        title="plantkpi collector",
        version=VERSION,
        description=(
            "Telemetry-verified key-process digitalization rate. Errors are "
            '`{"error": code, "detail": text}`; see docs/api.md.'
        ),
    )
    for lang in LANGS:
        # A damaged or missing catalogue (a broken package) fails at start, not on a page.
        catalogue_of(lang)
    errors.install(app)
    app.include_router(ops.open_router(runtime))
    protected = [Depends(require_token(settings.tokens))]
    for router in (
        kpi.router(runtime),
        history.router(runtime, settings),
        export.router(runtime, settings),
        ops.api_router(runtime),
        texts.router(runtime),
        report_doc.router(runtime, settings),
    ):
        app.include_router(router, dependencies=protected, responses=ERROR_RESPONSES)
    dashboard.install(app)
    return app
