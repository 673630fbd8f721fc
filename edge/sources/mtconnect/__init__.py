"""MTConnect: an agent's data items, read over HTTP with /probe, /current and /sample
(README.md: addressing, values, limits)."""
