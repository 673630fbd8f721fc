"""Shared by benchmarks: describe the machine, and replace one section of docs/benchmarks.md.

Each benchmark owns one ``## <title>`` section of the file and rewrites only that section,
so several benchmarks can report into the same document.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

DEFAULT_HEADER = (
    "# Benchmarks\n\n"
    "Measured figures, each with its machine and the exact command. The machines are small "
    "(2 cores) and shared, so absolute numbers move from run to run: compare the ratios, "
    "which are taken against a baseline measured in the same run.\n"
)


def machine_description() -> list[str]:
    """Markdown bullet lines: cores, CPU model, RAM, kernel, Python, server versions."""
    return [
        f"- cores (nproc): {os.cpu_count()}",
        f"- CPU: {_cpu_model()}",
        f"- RAM: {_ram_gib():.1f} GiB",
        f"- kernel: {platform.system()} {platform.release()}",
        f"- Python: {platform.python_version()} ({platform.python_implementation()})",
        f"- influxd: {_version(['influxd', 'version'])}",
        f"- mosquitto: {_version(['mosquitto', '-h'])}",
    ]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _version(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        return "not installed"
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    text = (result.stdout or result.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def replace_section(path: Path, title: str, body: str) -> None:
    """Write ``## title`` + ``body`` into ``path``, replacing that section if it exists.

    A section runs from its ``## `` heading to the next ``## `` heading (or the end); the
    rest of the file is kept as it is. A missing file is created with a short header.
    """
    heading = f"## {title}"
    section = f"{heading}\n\n{body.strip()}\n"
    text = path.read_text(encoding="utf-8") if path.exists() else DEFAULT_HEADER
    pattern = re.compile(rf"^{re.escape(heading)}[ \t]*\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        # A function replacement: the section's text must not be read as a regex template.
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
