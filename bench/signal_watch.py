"""What the signal watch costs on the edge's sample path.

    .venv/bin/python bench/signal_watch.py [--signals 1000] [--samples 1000000] [--runs 5] [--out FILE]

Every sample a source reports goes through its ``CountingSink`` into the agent's sink; the
watch (``edge/signal_watch.py``) adds a count per sample there. Times ``--samples``
samples spread over ``--signals`` signals through a ``CountingSink`` into a sink that drops
them, without and with the watch, alternating ``--runs`` times (medians), and one watch
report (the check a health report makes) over all signals. Writes the "Signal watch"
section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report import machine_description, replace_section  # noqa: E402
from common.register import Signal  # noqa: E402
from common.wire import Sample  # noqa: E402
from edge.buffer.sinks import CountingSink  # noqa: E402
from edge.signal_watch import SignalWatch  # noqa: E402
from edge.sources import SignalKey  # noqa: E402

SECTION = "Signal watch"


class DroppingSink:
    def sample(self, sample: Sample) -> None:
        pass

    def liveness(self, source: str, up: bool, detail: str = "") -> None:
        pass

    def after_durable(self, callback: Callable[[], None]) -> None:
        callback()

    def rejected(
        self, source: str, culprit: str, reason: str, signals: Collection[SignalKey] = ()
    ) -> None:
        pass


def _samples(signals: int, count: int) -> list[Sample]:
    return [Sample(f"m{n % signals}", "speed", n, 1.0, 0, n) for n in range(count)]


def _watch(signals: int) -> SignalWatch:
    watch = SignalWatch()
    signal = Signal.model_validate({"id": "speed", "role": "parameter", "source": "dev"})
    watch.watch((f"m{n}", signal) for n in range(signals))
    watch.liveness("dev", True)
    return watch


def _run(sink: CountingSink, samples: list[Sample]) -> float:
    started = time.perf_counter()
    for sample in samples:
        sink.sample(sample)
    return time.perf_counter() - started


def measure(signals: int, count: int, runs: int) -> dict[str, float]:
    samples = _samples(signals, count)
    without, with_watch, reports = [], [], []
    for _ in range(runs):
        without.append(_run(CountingSink(DroppingSink(), "dev", {}), samples))
        watch = _watch(signals)
        with_watch.append(_run(CountingSink(DroppingSink(), "dev", {}, watch), samples))
        started = time.perf_counter()
        watch.report()
        reports.append(time.perf_counter() - started)
    a, b = statistics.median(without), statistics.median(with_watch)
    return {
        "signals": signals,
        "samples": count,
        "without_ns": a / count * 1e9,
        "with_ns": b / count * 1e9,
        "ratio": b / a,
        "report_ms": statistics.median(reports) * 1000,
    }


def render(r: dict[str, float], command: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "\n".join(
            [
                f"Measured {when} with `{command}` (medians of alternating runs).",
                "",
                *machine_description(),
                "",
                "| signals | samples | per sample without the watch | with it | ratio | one report (all signals) |",
                "|---|---|---|---|---|---|",
                f"| {r['signals']:,.0f} | {r['samples']:,.0f} | {r['without_ns']:.0f} ns | "
                f"{r['with_ns']:.0f} ns | {r['ratio']:.2f} | {r['report_ms']:.2f} ms |",
                "",
                "The path measured is the source's counting sink alone (into a sink that drops the "
                "sample), so the ratio is large; what counts is the difference, about 0.2 µs per "
                "sample, against the edge agent's 23.9 to 47.5 ms of CPU per 1,000 stored samples "
                '("End-to-end throughput"): about 1 %. A report runs every health request and '
                "every `EDGE_STATUS_INTERVAL`.",
            ]
        )
        + "\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--signals", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = measure(args.signals, args.samples, args.runs)
    command = "python bench/signal_watch.py " + " ".join(argv if argv is not None else sys.argv[1:])
    section = render(result, command.strip())
    print(section)
    if args.out:
        replace_section(args.out, SECTION, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
