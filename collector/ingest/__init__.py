"""Uplink ingestion: consume edge batches from the broker, validate, hand lines to storage."""
