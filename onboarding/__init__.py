"""Bringing a real plant in: checking and comparing register files (``plantkpi register``)."""
