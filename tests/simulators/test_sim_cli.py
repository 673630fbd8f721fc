"""``plantkpi-sim``: check in-process, run as a real process stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.servers import REPO_ROOT, free_port
from simulators.cli import app
from simulators.ledger import read_ledger
from tests.simulators.conftest import OPCUA_REGISTER, OPCUA_SCENARIO, write_scenario
from tests.simulators.test_sim_mqtt import wait_until

DEMO = REPO_ROOT / "examples" / "demo" / "scenario.yaml"


def test_check_lists_machines_and_behaviours() -> None:
    result = CliRunner().invoke(app, ["check", "--scenario", str(DEMO)])
    assert result.exit_code == 0, result.output
    assert "plant-b/b2/b2-coating: intermittent period 12s duty 0.5" in result.output
    assert "plant-b/b1/b1-tempering: stops_updating after 10s" in result.output
    assert "plant-a/a1/a1-washing: not simulated" in result.output
    assert "plant-a/a1/a1-turning: healthy (5 signals via a1-opcua)" in result.output


def test_bad_input_exits_2_naming_the_culprit(tmp_path: Path) -> None:
    bad = tmp_path / "s.yaml"
    bad.write_text(f"register: {DEMO.parent / 'register.yaml'}\nmachines:\n  nope: {{}}\n")
    runner = CliRunner()
    result = runner.invoke(app, ["check", "--scenario", str(bad)])
    assert result.exit_code == 2
    assert "machines.nope: no process 'nope'" in result.output
    result = runner.invoke(app, ["run", "-s", str(DEMO), "--endpoint", "a1-opcua"])
    assert result.exit_code == 2
    assert "--endpoint override 'a1-opcua' is not SOURCE_ID=URL" in result.output
    result = runner.invoke(app, ["run", "-s", str(DEMO), "--broker", "a1-opcua=mqtt://h:1"])
    assert result.exit_code == 2
    assert "broker override for 'a1-opcua', but it is a opcua source" in result.output


@pytest.mark.integration
async def test_run_serves_until_sigterm_and_leaves_a_ledger(tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path, OPCUA_REGISTER, OPCUA_SCENARIO)
    ledger = tmp_path / "ledger.jsonl"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulators",
        "run",
        "--scenario",
        str(scenario),
        "--endpoint",
        f"s1=opc.tcp://127.0.0.1:{free_port()}",
        "--ledger",
        str(ledger),
        "--tick",
        "50ms",
        cwd=REPO_ROOT,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await wait_until(lambda: ledger.exists() and ledger.stat().st_size > 2000, 20)
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            _, stderr = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = stderr.decode()
    assert proc.returncode == 0, log
    assert "OPC UA source s1: 9 nodes of 4 machines (m1, m2, m3, m4)" in log
    records = read_ledger(ledger)
    assert f"stopped; {len(records)} samples recorded in {ledger}" in log
