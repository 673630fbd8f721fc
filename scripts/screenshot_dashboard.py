"""Screenshot the dashboard of a running collector with headless chromium.

    .venv/bin/python scripts/screenshot_dashboard.py --api http://127.0.0.1:8080 \
        --out docs/dashboard.png
    .venv/bin/python scripts/screenshot_dashboard.py --lang zh --out docs/dashboard-zh.png

Run it against the demo (``bash scripts/demo.sh``) once its KPI window has filled.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.browser import BrowserError, screenshot

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--api", default="http://127.0.0.1:8080", help="the collector's URL")
    parser.add_argument(
        "--lang",
        choices=("en", "zh"),
        default="en",
        help="the page's language (the page's ?lang=): en, or zh (Simplified Chinese)",
    )
    parser.add_argument(
        "--out", type=Path, help="default: docs/dashboard.png (en), docs/dashboard-zh.png (zh)"
    )
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args()
    out = args.out or ROOT / "docs" / ("dashboard.png" if args.lang == "en" else "dashboard-zh.png")
    url = f"{args.api.rstrip('/')}/dashboard?lang={args.lang}"
    try:
        out = screenshot(url, out, (args.width, args.height))
    except BrowserError as exc:
        print(f"screenshot_dashboard: {exc}", file=sys.stderr)
        return 1
    print(f"screenshot_dashboard: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
