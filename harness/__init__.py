"""The local-server harness: real servers as subprocesses and a whole plant as processes.

What the tests, the demo (``scripts/demo.py``) and the benchmarks (``bench/``) start, so
that each runs exactly what the others check. ``harness/README.md`` lists the modules.
Nothing here imports pytest.
"""
