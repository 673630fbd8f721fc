"""Debian's chromium, headless, driven over the DevTools protocol: click, reload, read the page.

``harness.browser`` prints a page's DOM once; a test that clicks a button, reloads the page
with what it stored, or reads what is *visible* needs the browser to stay up. Nothing is
installed for it: chromium speaks the protocol on two pipes (``--remote-debugging-pipe``:
it reads commands on fd 3 and writes answers and events on fd 4, each a JSON text ended by a
NUL byte). One browser per :class:`Chromium`, with its own profile folder (so
``localStorage`` lasts across reloads and is gone afterwards), one page.

Waiting is done in the page: :meth:`Chromium.wait_for` evaluates a condition until it holds
(a time limit only stops a hung wait; nothing is asserted about time).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import subprocess
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

from harness.browser import FLAGS, BrowserError, chromium_binary


class Chromium:
    """``with Chromium("--accept-lang=zh-CN") as browser: browser.open(url)``."""

    def __init__(self, *flags: str, timeout: float = 30.0) -> None:
        self.flags = flags
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="plantkpi-cdp-")
        self._proc: subprocess.Popen[bytes] | None = None
        self._to_browser = -1
        self._from_browser = -1
        self._buffer = b""
        self._next_id = 0
        self._session = ""
        self.events: deque[dict[str, Any]] = deque(maxlen=1000)

    # ---- the process ------------------------------------------------------------------------

    def __enter__(self) -> Chromium:
        commands_read, commands_write = os.pipe()  # we write, chromium reads fd 3
        answers_read, answers_write = os.pipe()  # chromium writes fd 4, we read

        def pipes_as_3_and_4() -> None:  # in the child, before exec
            # Out of the way first: either pipe may itself be fd 3 or 4.
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (commands_read, answers_write)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        args = [
            chromium_binary(),
            *FLAGS,
            "--remote-debugging-pipe",
            f"--user-data-dir={self._profile.name}",
            *self.flags,
            "about:blank",
        ]
        self._proc = subprocess.Popen(
            args,
            pass_fds=(3, 4),  # kept open in the child (after pipes_as_3_and_4 made them)
            preexec_fn=pipes_as_3_and_4,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(commands_read)
        os.close(answers_write)
        self._to_browser, self._from_browser = commands_write, answers_read
        try:
            targets = self.call("Target.getTargets", session=False)["targetInfos"]
            page = next(t for t in targets if t["type"] == "page")
            attached = self.call(
                "Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}, False
            )
            self._session = attached["sessionId"]
            self.call("Page.enable")
            self.call("Runtime.enable")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(BrowserError, OSError):
                self.call("Browser.close", session=False, timeout=5)
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
            self._proc = None
        for fd in (self._to_browser, self._from_browser):
            if fd >= 0:
                os.close(fd)
        self._to_browser = self._from_browser = -1
        self._profile.cleanup()

    # ---- the protocol ----------------------------------------------------------------------

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: bool = True,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send one command and return its result (events met meanwhile go to ``events``)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            answer = self._read(deadline, method)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer.get("result", {})
                return result
            if "method" in answer:
                self.events.append(answer)

    def _read(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_browser], [], [], max(left, 0))
            if not ready:
                raise BrowserError(f"chromium did not answer {waiting_for}")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise BrowserError(f"chromium closed its pipe while {waiting_for}")
            self._buffer += chunk
        text, _, self._buffer = self._buffer.partition(b"\0")
        decoded: dict[str, Any] = json.loads(text)
        return decoded

    def wait_event(self, method: str, timeout: float | None = None) -> dict[str, Any]:
        """The next event ``method`` (one already received first)."""
        for event in list(self.events):
            if event["method"] == method:
                self.events.remove(event)
                return event
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            message = self._read(deadline, method)
            if message.get("method") == method:
                return message
            if "method" in message:
                self.events.append(message)

    # ---- the page ------------------------------------------------------------------------

    def evaluate(self, expression: str, timeout: float | None = None) -> Any:
        """The JSON value of a JavaScript expression (a promise is awaited)."""
        result = self.call(
            "Runtime.evaluate",
            {
                "expression": expression,
                "awaitPromise": True,
                "returnByValue": True,
                "userGesture": True,
            },
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"page script failed: {text}")
        return result["result"].get("value")

    def wait_for(self, condition: str, timeout_ms: int = 25_000) -> Any:
        """Evaluates ``condition`` in the page every 50 ms until it is truthy; returns it."""
        script = f"""new Promise((resolve, reject) => {{
            const until = performance.now() + {timeout_ms};
            const poll = () => {{
                let value;
                try {{ value = ({condition}); }} catch (err) {{ value = undefined; }}
                if (value) resolve(value);
                else if (performance.now() > until) reject(new Error("never true: " + {json.dumps(condition)}));
                else setTimeout(poll, 50);
            }};
            poll();
        }})"""
        return self.evaluate(script, timeout=timeout_ms / 1000 + 10)

    def open(self, url: str) -> None:
        """Load ``url`` and wait until its document has loaded."""
        self.call("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    def reload(self) -> None:
        self.evaluate("window.__reloaded = true")
        self.call("Page.reload", {"ignoreCache": True})
        self.wait_for("document.readyState === 'complete' && !window.__reloaded")

    def click(self, selector: str) -> None:
        """A click as a person makes it (a trusted event, in the element's middle)."""
        box = self.evaluate(
            f"""(() => {{
                const node = document.querySelector({json.dumps(selector)});
                if (!node) return null;
                node.scrollIntoView({{block: "center"}});
                const r = node.getBoundingClientRect();
                return [r.left + r.width / 2, r.top + r.height / 2];
            }})()"""
        )
        if box is None:
            raise BrowserError(f"nothing in the page matches {selector!r}")
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )

    def allow_downloads(self, folder: Path) -> None:
        self.call(
            "Browser.setDownloadBehavior",
            {"behavior": "allow", "downloadPath": str(folder), "eventsEnabled": True},
            session=False,
        )
