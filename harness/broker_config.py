"""The shipped mosquitto configurations, for tests that must run what users run.

The fault suite and the broker-durability tests start mosquitto with the persistence and
queueing lines of ``deploy/mosquitto/*.conf`` themselves, not with a copy that could
drift: a shipped file that loses acknowledged messages on kill -9 must fail a test.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

DEPLOY = Path(__file__).parents[1] / "deploy" / "mosquitto"
CENTRAL = DEPLOY / "mosquitto.conf"
CENTRAL_SECURE = DEPLOY / "mosquitto-secure.conf"
DURABILITY_KEYS = frozenset(
    {"autosave_interval", "autosave_on_changes", "max_queued_messages", "max_queued_bytes"}
)
"""What decides whether acknowledged messages survive a crash (and how many are queued);
listeners, paths, TLS and logins are the harness's own."""


def shipped_lines(path: Path, keys: frozenset[str] = DURABILITY_KEYS) -> list[str]:
    """The lines of a shipped config whose option is one of ``keys``, in file order."""
    out = []
    for line in path.read_text().splitlines():
        words = line.split()
        if words and not words[0].startswith("#") and words[0] in keys:
            out.append(" ".join(words))
    if not out:
        raise AssertionError(f"{path}: none of {sorted(keys)} found")
    return out


def write_password_file(path: Path, passwords: Mapping[str, str]) -> Path:
    """A mosquitto password file (salted hashes, made by ``mosquitto_passwd``) for users."""
    for user, password in passwords.items():
        create = ["-c"] if not path.exists() else []
        subprocess.run(
            ["mosquitto_passwd", *create, "-b", str(path), user, password],
            check=True,
            capture_output=True,
        )
    return path
