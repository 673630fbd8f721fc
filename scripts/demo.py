"""The demo: a simulated enterprise end to end, with the KPI table updating in the terminal.

Starts mosquitto and influxd (data under .demo/), the equipment simulators, one edge agent
per plant and the collector, then shows the KPI table as it updates. Ctrl-C stops it all.
Run it through ``bash scripts/demo.sh`` (which installs what is missing first).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from harness.plant import PlantStack
from harness.servers import InfluxServer, MosquittoServer

ROOT = Path(__file__).resolve().parents[1]


def show_kpi(stack: PlantStack, args: argparse.Namespace) -> None:
    """Refresh the KPI table from the collector API until Ctrl-C or --duration."""
    import httpx
    from rich.console import Console

    from collector.api.models import KpiOut, ProcessesOut
    from collector.kpi_cli import display_names, reader, render_kpi

    _ = reader(args.lang or os.environ.get("KPI_LANG"))
    names = None
    console = Console()
    deadline = time.monotonic() + args.duration if args.duration else None
    while deadline is None or time.monotonic() < deadline:
        stack.check_alive()
        kpi = httpx.get(f"{stack.api_url}/api/v1/kpi", timeout=10)
        if kpi.status_code == 200:
            processes = httpx.get(f"{stack.api_url}/api/v1/processes", timeout=10)
            if names is None or not names.enterprises:
                names = display_names(stack.api_url, None, _)
            if console.is_terminal:
                console.clear()
            render_kpi(
                console,
                KpiOut.model_validate(kpi.json()),
                ProcessesOut.model_validate(processes.json()),
                _,
                names,
            )
            console.print(
                f"API {stack.api_url} · OpenAPI {stack.api_url}/docs · "
                f"try: .venv/bin/kpi process a1-grinding --api {stack.api_url} · Ctrl-C stops"
            )
        else:
            console.print(f"waiting for the first KPI evaluation: {kpi.json().get('detail')}")
        time.sleep(5)


def _stop_on_sigterm(signum: int, frame: object) -> None:
    # Stopped by a service manager or `timeout`: clean up as Ctrl-C does.
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", type=Path, default=ROOT / "examples/demo/scenario.yaml")
    parser.add_argument("--api-port", type=int, default=8080)
    parser.add_argument("--window", default="60s", help="KPI window (the product default is 1h)")
    parser.add_argument("--period", default="5s", help="how often the KPI is evaluated")
    parser.add_argument(
        "--duration", type=float, default=0, help="stop after N seconds (0: until Ctrl-C)"
    )
    parser.add_argument("--keep-data", action="store_true", help="keep .demo/ from an earlier run")
    parser.add_argument(
        "--lang",
        default=None,
        help="the table in en or zh (Simplified Chinese); default: KPI_LANG, else the locale",
    )
    args = parser.parse_args()

    import yaml

    scenario = args.scenario.resolve()
    register = (scenario.parent / yaml.safe_load(scenario.read_text())["register"]).resolve()
    data = ROOT / ".demo"
    if data.exists() and not args.keep_data:
        shutil.rmtree(data)
    data.mkdir(exist_ok=True)

    mosquitto = MosquittoServer(data / "mosquitto")
    influx = InfluxServer(data / "influxdb")
    stack: PlantStack | None = None
    try:
        print("demo: starting mosquitto and influxd (data in .demo/)", flush=True)
        mosquitto.start()
        influx.start()
        influx_env = {"COLLECTOR_INFLUX__URL": influx.url, "COLLECTOR_INFLUX__MODE": "v1"}
        stack = PlantStack(register, scenario, mosquitto.url, influx_env, data / "logs")
        stack.start_collector(
            window=args.window, period=args.period, lag="3s", api_port=args.api_port
        )
        stack.wait_for_api()
        stack.start_simulators()
        stack.wait_for_simulators()
        stack.start_edges()
        print(
            f"demo: broker {mosquitto.url}, InfluxDB {influx.url} (db plantkpi), "
            f"API {stack.api_url} (OpenAPI {stack.api_url}/docs), logs in .demo/logs/",
            flush=True,
        )
        edges = ", ".join(f"{plant} {url}" for plant, url in stack.edge_health_urls.items())
        print(f"demo: edge agents' health: {edges}", flush=True)
        print(
            f"demo: the KPI window is {args.window}: rates settle once it has filled.", flush=True
        )
        show_kpi(stack, args)
    except KeyboardInterrupt:
        print("\ndemo: stopping", flush=True)
    finally:
        if stack is not None:
            stack.stop_all()
        influx.stop()
        mosquitto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
