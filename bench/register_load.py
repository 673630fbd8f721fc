"""Register loading: wall time and peak memory of ``load_register`` on a large register.

    .venv/bin/python bench/register_load.py [--processes N] [--repeat R]

Writes a register of ``N`` processes (default 20,000; 5 signals each, 20 processes per
line; about 5.8 MB of YAML) to a temporary folder and loads it ``R`` times, printing the
size, each load's wall seconds and the process's peak RSS. Prints, does not write a report:
the figures are for the register size limit in docs/hostile-input.md.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script: this checkout first, for `bench.*` and so a worktree measures its own code.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common.register_loader import load_register  # noqa: E402

PROCESSES_PER_LINE = 20
PARAMETERS_PER_PROCESS = 4
"""Plus one ``state`` signal: 5 signals per process."""

_HEADER = """\
version: bench-register-load
enterprise: {id: bench-enterprise, region: Bench, above_designated_size: true}
plants:
- id: bench-plant
  sources:
  - {id: plc, kind: opcua, endpoint: "opc.tcp://127.0.0.1:4840", security: {policy: None, mode: None}}
  lines:
"""


def process_yaml(index: int) -> str:
    """One process, signals in flow style: about 240 bytes, as in the reported 4.7 MB file."""
    parameters = "".join(
        f"      - {{id: p{n}, role: parameter}}\n" for n in range(PARAMETERS_PER_PROCESS)
    )
    return (
        f"    - id: m{index:05d}\n"
        f"      name: M{index}\n"
        "      key: true\n"
        "      industry: discrete\n"
        "      signals:\n"
        f"      - {{id: state, role: state, source: plc, node: i={index}}}\n"
        f"{parameters}"
    )


def register_text(processes: int) -> str:
    """A valid register of ``processes`` processes, 5 signals each."""
    parts = [_HEADER]
    for index in range(processes):
        if index % PROCESSES_PER_LINE == 0:
            parts.append(f"  - id: line-{index // PROCESSES_PER_LINE:04d}\n    processes:\n")
        parts.append(process_yaml(index))
    return "".join(parts)


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "register.yaml"
        path.write_text(register_text(args.processes))
        size_mb = path.stat().st_size / 1e6
        print(
            f"{args.processes} processes, {size_mb:.1f} MB; peak RSS before: {peak_rss_mib():.0f} MiB"
        )
        for run in range(args.repeat):
            start = time.perf_counter()
            register = load_register(path)
            seconds = time.perf_counter() - start
            print(
                f"load {run + 1}: {seconds:.2f} s, {len(register.signals())} signals, "
                f"peak RSS {peak_rss_mib():.0f} MiB"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
