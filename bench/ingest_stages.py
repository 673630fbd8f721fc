"""Where the collector's time goes per sample: decode, resolve, serialize, compress.

    .venv/bin/python bench/ingest_stages.py [--against REV] [--batches N] [--runs N] [--out FILE]

Times each stage of the collector's ingest on the same uplink batches (every signal of
plant-a in ``examples/demo/register.yaml``, 5,000 samples each, as
``bench/collector_ingest.py`` publishes them), in a process of its own per checkout, no
server involved:

- *decode*: ``common.wire.decode_batch`` (JSON → validated columns);
- *resolve*: ``collector.ingest.resolve.resolve_batch`` (register lookup and the
  hostile-input rules);
- *serialize*: the pipeline's line building (``IngestPipeline._serialize``);
- *compress*: joining the lines and gzip level 1, the write body.

``--against REV`` times an earlier commit too (checked out in a temporary git worktree), in
the same run and alternating with this checkout, so the ratio is taken on the same machine
at the same time. Each figure is the fastest of ``--runs`` passes (least disturbed by other
processes on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script: this checkout first, for `bench.*` and so a worktree measures its own code.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report import machine_description, replace_section  # noqa: E402

SECTION = "Collector ingest, stage by stage"
STAGES = ("decode", "resolve", "serialize", "compress")
REGISTER = ROOT / "examples" / "demo" / "register.yaml"

# Runs in a fresh interpreter with one checkout first on sys.path: the stage functions have
# the same names and signatures in every commit this bench compares.
_TIMER = """
import gzip, json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from collector.ingest.pipeline import IngestPipeline
from collector.ingest.resolve import resolve_batch
from common.register_loader import load_register
from common.topics import parse_edge_topic
from common.wire import decode_batch

register = load_register(Path(sys.argv[2]))
topic_name = sys.argv[3]
now = int(sys.argv[4])
payloads = [bytes.fromhex(h) for h in json.load(open(sys.argv[5]))]
runs = int(sys.argv[6])
topic = parse_edge_topic("plantkpi", topic_name)
registers = {register.model.enterprise.id: register}
pipeline = IngestPipeline(None, registers, None)
best = {}

def timed(name, work, items):
    started = time.perf_counter()
    out = [work(item) for item in items]
    elapsed = time.perf_counter() - started
    best[name] = min(best.get(name, elapsed), elapsed)
    return out

for _ in range(runs):
    batches = timed("decode", lambda p: decode_batch(p, topic_name), payloads)
    resolved = timed("resolve", lambda b: resolve_batch(b, topic, registers, now_ns=now), batches)
    lines = timed(
        "serialize",
        lambda r: pipeline._serialize(r, topic.enterprise, topic.plant, topic.edge)[0],
        resolved,
    )
    timed("compress", lambda ls: gzip.compress("\\n".join(ls).encode(), compresslevel=1), lines)
samples = sum(len(b.samples) for b in batches)
print(json.dumps({"samples": samples, "seconds": best}))
"""


def make_payload_file(batches: int, folder: Path) -> tuple[Path, str]:
    from bench.collector_ingest import _topic, make_payloads
    from common.register_loader import load_register

    register = load_register(REGISTER)
    payloads = make_payloads(register, batches, start_ns=time.time_ns() - 3600 * 10**9)
    path = folder / "payloads.json"
    path.write_text(json.dumps([p.hex() for p in payloads]))
    return path, _topic(register)


def time_checkout(tree: Path, payloads: Path, topic: str, runs: int) -> dict[str, float]:
    """Microseconds per sample for each stage, in a fresh interpreter importing ``tree``."""
    now = str(time.time_ns())
    args = [str(tree), str(REGISTER), topic, now, str(payloads), str(runs)]
    done = subprocess.run(
        [sys.executable, "-c", _TIMER, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"ingest_stages: timing {tree} failed:\n{done.stderr}")
    result = json.loads(done.stdout)
    return {name: s / result["samples"] * 1e6 for name, s in result["seconds"].items()}


def render(
    now: dict[str, float], before: dict[str, float] | None, rev: str, command: str, samples: int
) -> str:
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with:",
        "",
        "```",
        command,
        "```",
        "",
        *machine_description(),
        "",
        f"{samples:,} samples in uplink batches of 5,000, µs per sample (fastest pass):",
        "",
    ]
    if before is None:
        lines += ["| stage | µs per sample |", "|---|---|"]
        for stage in STAGES:
            lines.append(f"| {stage} | {now[stage]:.2f} |")
        lines.append(f"| **total** | **{sum(now.values()):.2f}** |")
    else:
        lines += [f"| stage | {rev} | this checkout | ratio |", "|---|---|---|---|"]
        for stage in STAGES:
            lines.append(
                f"| {stage} | {before[stage]:.2f} | {now[stage]:.2f} | "
                f"{now[stage] / before[stage]:.2f}× |"
            )
        total_before, total_now = sum(before.values()), sum(now.values())
        lines.append(
            f"| **total** | **{total_before:.2f}** | **{total_now:.2f}** | "
            f"**{total_now / total_before:.2f}×** |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="", help="an earlier commit to time beside this one")
    parser.add_argument("--batches", type=int, default=40, help="5,000-sample batches")
    parser.add_argument("--runs", type=int, default=5, help="passes; the fastest counts")
    parser.add_argument("--out", type=Path, default=None, help="write the section here")
    args = parser.parse_args(argv)
    if args.batches < 1 or args.runs < 1:
        parser.error("--batches and --runs must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    given = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join([".venv/bin/python", "bench/ingest_stages.py", *given])
    with tempfile.TemporaryDirectory(prefix="ingest-stages-") as tmp:
        folder = Path(tmp)
        payloads, topic = make_payload_file(args.batches, folder)
        before: dict[str, float] | None = None
        if args.against:
            old = folder / "before"
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.against],
                check=True,
                capture_output=True,
            )
            try:
                # Alternating, fastest of each: both see the same machine.
                passes = [
                    (
                        time_checkout(old, payloads, topic, 1),
                        time_checkout(ROOT, payloads, topic, 1),
                    )
                    for _ in range(args.runs)
                ]
            finally:
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                    check=False,
                    capture_output=True,
                )
            before = {s: min(p[0][s] for p in passes) for s in STAGES}
            now = {s: min(p[1][s] for p in passes) for s in STAGES}
        else:
            now = time_checkout(ROOT, payloads, topic, args.runs)
    section = render(now, before, args.against, command, args.batches * 5000)
    print(section)
    if args.out is not None:
        replace_section(args.out, SECTION, section)
        print(f"bench: wrote section {SECTION!r} of {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
