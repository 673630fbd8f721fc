"""Shared test support: real servers as subprocesses and the InfluxDB v2 compatibility proxy."""
