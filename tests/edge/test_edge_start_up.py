"""The edge agent refuses a buffer directory it cannot use at start-up: one line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge.buffer import BufferDirError
from edge.cli import app
from edge.settings import check_buffer_dir

ROOT = Path(__file__).parents[2]
REGISTER = ROOT / "examples" / "demo" / "register.yaml"


def _edge_run(tmp_path: Path, buffer_dir: Path) -> subprocess.CompletedProcess[str]:
    # No EDGE_ variable of the calling shell, and no developer's .env (cwd is tmp_path).
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("EDGE_")}
    env["EDGE_BUFFER_DIR"] = str(buffer_dir)
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "edge", "run", "--register", str(REGISTER), "--plant", "plant-a"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "plantkpi-edge:" in line]


def test_a_buffer_dir_that_is_a_file_stops_start_up_in_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "buffer"
    a_file.write_text("not a directory")
    result = _edge_run(tmp_path, a_file)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert _error_lines(result.stderr) == [
        f"plantkpi-edge: configuration error: EDGE_BUFFER_DIR {a_file} is a file, not a directory"
    ]


def test_a_buffer_dir_below_a_file_names_the_file(tmp_path: Path) -> None:
    a_file = tmp_path / "buffer"
    a_file.write_text("")
    result = _edge_run(tmp_path, a_file / "edge-1")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert _error_lines(result.stderr) == [
        f"plantkpi-edge: configuration error: EDGE_BUFFER_DIR {a_file / 'edge-1'}: "
        f"{a_file} is a file, not a directory"
    ]


def test_a_buffer_dir_that_is_missing_or_a_directory_is_fine(tmp_path: Path) -> None:
    assert check_buffer_dir(tmp_path) == tmp_path
    assert check_buffer_dir(tmp_path / "new" / "edge-1") == tmp_path / "new" / "edge-1"


def test_any_unusable_buffer_dir_is_a_configuration_error_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # E.g. the directory is locked by another agent, or not writable for this user.
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise BufferDirError(f"edge buffer directory {tmp_path} is in use by another edge agent")

    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.upper().startswith("EDGE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setattr("edge.agent.SampleBuffer.open", refuse)
    result = CliRunner().invoke(
        app, ["run", "--register", str(REGISTER), "--plant", "plant-a", "--log-level", "ERROR"]
    )
    assert result.exit_code == 2
    assert (
        f"plantkpi-edge: configuration error: edge buffer directory {tmp_path} is in use"
        in result.output
    )
