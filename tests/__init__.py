"""Test suite; a package so that tests share helpers (``tests.registers``) by import."""
