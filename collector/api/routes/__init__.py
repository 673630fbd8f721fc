"""Routes by concern: ``ops`` (health, readiness, metrics, edges, stats), ``kpi`` (current
rates, scopes, enterprises, processes), ``history`` (stored trend, reports, recompute),
``export`` (CSV)."""
