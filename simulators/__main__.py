"""``python -m simulators``: the same as ``plantkpi-sim``."""

from simulators.cli import main

main()
