"""A picture of the report's first page (docs/report-doc.png), from a realistic report.

    .venv/bin/python scripts/screenshot_report_doc.py                  # zh, docs/report-doc.png
    .venv/bin/python scripts/screenshot_report_doc.py --lang en --out /tmp/report-en.png
    .venv/bin/python scripts/screenshot_report_doc.py --api http://127.0.0.1:8080 \
        --enterprise jinhua-machinery --start 2026-12-01T00:00:00Z --end 2026-12-08T00:00:00Z

Without ``--api`` it starts its own influxd (``harness``), stores a quarter of the demo
enterprise's results the way the live loop stores them (``bench/report_doc_data.py``; one
window per hour, the windows the report reads), and renders the report as the API does.
With ``--api`` it asks a running collector (``GET /api/v1/report-doc?format=pdf``). The
first page is rasterised with poppler's ``pdftoppm``.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.report_doc_data import HOUR, Story, day_lines  # noqa: E402
from collector.i18n import Lang  # noqa: E402
from collector.report_doc.document import build_report  # noqa: E402
from collector.report_doc.pdf import render_pdf  # noqa: E402
from collector.storage.reader import InfluxQLReader  # noqa: E402
from collector.storage.settings import InfluxSettings  # noqa: E402
from collector.storage.writer import make_writer  # noqa: E402
from common.register_loader import load_register  # noqa: E402
from harness.servers import InfluxServer  # noqa: E402

CST = timezone(timedelta(hours=8))
START = int(datetime(2026, 7, 1, tzinfo=CST).timestamp()) * 1_000_000_000
"""The third quarter of 2026 in China Standard Time; production days start at 00:00 CST."""
DAYS = 92


async def _synthetic(url: str, lang: Lang) -> bytes:
    register = load_register(ROOT / "examples" / "demo" / "register.yaml")
    settings = InfluxSettings(url=url, database="report_doc_picture", timeout=300)
    writer, reader = make_writer(settings), InfluxQLReader(settings)
    story = Story(register, START, DAYS)
    try:
        await writer.ensure_database()
        for day in range(DAYS):
            await writer.write(day_lines(story, day, HOUR))
        doc = await build_report(
            reader,
            register,
            START,
            START + DAYS * 24 * HOUR,
            day_offset_ns=16 * HOUR,
            utc_offset_s=8 * 3600,
        )
    finally:
        await writer.close()
        await reader.close()
    return await asyncio.to_thread(render_pdf, doc, lang)


def _from_api(args: argparse.Namespace) -> bytes:
    params = {
        "enterprise": args.enterprise,
        "start": args.start,
        "end": args.end,
        "format": "pdf",
        "lang": args.lang,
    }
    response = httpx.get(f"{args.api.rstrip('/')}/api/v1/report-doc", params=params, timeout=600)
    if response.status_code != 200:
        raise SystemExit(f"{response.status_code}: {response.text}")
    return response.content


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lang", choices=("en", "zh"), default="zh")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report-doc.png")
    parser.add_argument("--pdf", type=Path, help="also keep the PDF here")
    parser.add_argument("--api", help="a running collector's URL (else: synthetic data)")
    parser.add_argument("--enterprise", default="jinhua-machinery")
    parser.add_argument("--start", help="with --api: ISO 8601 with a zone")
    parser.add_argument("--end", help="with --api: ISO 8601 with a zone")
    parser.add_argument("--dpi", type=int, default=80)
    args = parser.parse_args()
    if args.api:
        pdf = _from_api(args)
    else:
        with tempfile.TemporaryDirectory() as folder, InfluxServer(Path(folder)) as influx:
            pdf = asyncio.run(_synthetic(influx.url, args.lang))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.pdf"
        path.write_bytes(pdf)
        if args.pdf:
            args.pdf.write_bytes(pdf)
        stem = Path(folder) / "page"
        subprocess.run(
            [
                "pdftoppm",
                "-png",
                "-r",
                str(args.dpi),
                "-f",
                "1",
                "-l",
                "1",
                "-singlefile",
                path,
                stem,
            ],
            check=True,
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(stem.with_suffix(".png").read_bytes())
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
