"""The collector's HTTP JSON API (FastAPI; OpenAPI at /docs and /openapi.json)."""
