"""Debian's chromium, headless, as a test tool: the DOM a page renders, and screenshots.

No webdriver and nothing downloaded: ``chromium --headless --dump-dom`` loads the page,
runs its scripts for a *virtual* time budget (timers run ahead without waiting; network
requests are waited for) and prints the resulting DOM. The profile lives in a temporary
folder, and every background service that would reach the network is off.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",  # runs as root in CI containers, where the sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
)


class BrowserError(RuntimeError):
    pass


def chromium_binary() -> str:
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if found is None:
        raise BrowserError(
            "chromium not found; install it: bash scripts/install-system-deps.sh (apt: chromium)"
        )
    return found


def _run(args: list[str], timeout: float) -> str:
    with tempfile.TemporaryDirectory(prefix="plantkpi-chromium-") as profile:
        result = subprocess.run(
            [chromium_binary(), *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    if result.returncode != 0:
        raise BrowserError(
            f"chromium {args[-1]} failed ({result.returncode}): {result.stderr[-2000:]}"
        )
    return result.stdout


def dump_dom(url: str, budget_ms: int = 4000, timeout: float = 60.0) -> str:
    """The page's DOM after its scripts ran for ``budget_ms`` of virtual time."""
    return _run([f"--virtual-time-budget={budget_ms}", "--dump-dom", url], timeout)


def screenshot(
    url: str,
    out: Path,
    size: tuple[int, int] = (1400, 1000),
    budget_ms: int = 4000,
    timeout: float = 60.0,
) -> Path:
    """A PNG of the page after its scripts ran for ``budget_ms`` of virtual time."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    _run(
        [
            f"--virtual-time-budget={budget_ms}",
            f"--window-size={size[0]},{size[1]}",
            f"--screenshot={out}",
            url,
        ],
        timeout,
    )
    if not out.is_file():
        raise BrowserError(f"chromium wrote no screenshot to {out}")
    return out


@dataclass(frozen=True)
class Shown:
    """One element with a ``data-testid``: its ``data-value`` and its visible text."""

    value: str | None
    text: str


class _TestIds(HTMLParser):
    """Collects every element carrying ``data-testid`` (text includes its descendants)."""

    _VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "area", "base", "col"})

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, Shown] = {}
        self._open: list[tuple[str, str | None, str | None, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._VOID:
            return
        a = dict(attrs)
        self._open.append((tag, a.get("data-testid"), a.get("data-value"), []))

    def handle_endtag(self, tag: str) -> None:
        # Pop up to the matching tag (the DOM chromium prints is well formed).
        while self._open:
            open_tag, testid, value, text = self._open.pop()
            joined = "".join(text)
            if self._open:
                self._open[-1][3].append(joined)
            if testid is not None:
                if testid in self.found:
                    raise BrowserError(f"data-testid {testid!r} appears twice in the page")
                self.found[testid] = Shown(value, " ".join(joined.split()))
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][3].append(data)


def by_testid(html: str) -> dict[str, Shown]:
    """``data-testid`` → what the page shows there."""
    parser = _TestIds()
    parser.feed(html)
    parser.close()
    return parser.found
