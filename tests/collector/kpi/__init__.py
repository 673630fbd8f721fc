"""Unit tests of the pure KPI evaluator and aggregation (no servers)."""
