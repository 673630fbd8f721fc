"""Central collector: uplink consumer, storage, KPI evaluator and API."""
