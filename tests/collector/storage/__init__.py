"""Tests of collector.storage and of the test servers it runs against."""
