"""The container deployment files: docker-compose.yml resolves, and what it runs fits the repo.

``docker-compose config`` (Debian's docker-compose 1.29, which needs no Docker engine for
this) validates and interpolates the compose file with ``.env.example``. The resolved
services are then held against the register, the scenario, the collector's settings model,
the Dockerfile, ``.dockerignore`` and ``pyproject.toml``: a renamed option, file, setting or
console script fails here instead of in a deployment. Nothing is built or started.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import BaseModel

from collector.settings import CollectorSettings
from common.endpoints import parse_broker_url
from common.protocols.mqtt import MqttSource
from common.register import Source
from common.register_loader import LoadedRegister, load_register
from simulators.equipment import serves_endpoint
from simulators.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
MOSQUITTO_CONF = ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
GRAFANA = ROOT / "deploy" / "grafana"
SCHEMA_DOC = ROOT / "docs" / "schema.md"

EXPECTED_SERVICES = {
    "mosquitto",
    "influxdb",
    "influxdb-init",
    "simulators",
    "edge-plant-a",
    "edge-plant-b",
    "collector",
    "grafana",
}
PLANTKPI_SERVICES = {"simulators", "edge-plant-a", "edge-plant-b", "collector"}
"""The services that run the project's own image."""
SECRETS = (
    "PLANTKPI_INFLUX_ADMIN_PASSWORD",
    "PLANTKPI_INFLUX_ADMIN_TOKEN",
    "PLANTKPI_GRAFANA_ADMIN_PASSWORD",
)
"""Variables the compose file must not default: without them it refuses to resolve."""
COMPOSE_TIMEOUT = 120.0


# --- running docker-compose ----------------------------------------------------------------


def _compose_binary() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        pytest.fail(
            "docker-compose not found on PATH; install it: bash scripts/install-system-deps.sh"
        )
    return found


def _compose_config(env_file: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """``docker-compose config`` with only ``env_file`` for interpolation.

    The environment is minimal so that neither the caller's shell (which overrides the env
    file in compose) nor a developer's ``.env`` changes the outcome.
    """
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LC_ALL": "C.UTF-8"}
    return subprocess.run(
        [_compose_binary(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMPOSE_TIMEOUT,
        check=False,
    )


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}:{number}: not KEY=VALUE: {raw!r}"
        values[key.strip()] = value.strip()
    return values


@pytest.fixture(scope="module")
def compose_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("compose-home")


@pytest.fixture(scope="module")
def example_env() -> dict[str, str]:
    return _read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def services(compose_home: Path) -> dict[str, dict[str, Any]]:
    result = _compose_config(ENV_EXAMPLE, compose_home)
    assert result.returncode == 0, (
        f"docker-compose config failed ({result.returncode}):\n{result.stderr}"
    )
    resolved = yaml.safe_load(result.stdout)
    assert isinstance(resolved, dict), f"unexpected docker-compose config output:\n{result.stdout}"
    found = resolved.get("services")
    assert isinstance(found, dict), "docker-compose config printed no services"
    return found


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    if isinstance(command, str):
        return shlex.split(command)
    assert isinstance(command, list), f"no command: {service}"
    return [str(part) for part in command]


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _options(command: list[str], name: str) -> list[str]:
    """Values of a repeatable ``--name value`` option."""
    return [command[i + 1] for i, part in enumerate(command[:-1]) if part == name]


def _option(command: list[str], name: str) -> str:
    values = _options(command, name)
    assert len(values) == 1, f"expected one {name} in {command}, got {values}"
    return values[0]


def _overrides(command: list[str], name: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in _options(command, name):
        key, sep, value = item.partition("=")
        assert sep and key and value, f"{name} {item!r} is not SOURCE_ID=URL"
        assert key not in result, f"{name} given twice for {key} in {command}"
        result[key] = value
    return result


# --- the Dockerfile ------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def _instructions(text: str) -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            keyword, _, rest = line.partition(" ")
            yield keyword.upper(), rest.strip()
    assert not pending, "Dockerfile ends in a line continuation"


def _stages() -> list[Stage]:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for keyword, rest in _instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if keyword == "ARG" and not stages:
            arg, _, default = rest.partition("=")
            args[arg.strip()] = default.strip().strip("\"'")
        elif keyword == "FROM":
            words = rest.split()
            base = re.sub(
                r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], words[0]
            )
            stages.append(Stage(base))
        else:
            assert stages, f"Dockerfile: {keyword} before the first FROM"
            stages[-1].instructions.append((keyword, rest))
    assert stages, "Dockerfile has no FROM"
    return stages


def _command_words(rest: str) -> list[str]:
    """The programs a RUN/CMD/ENTRYPOINT starts (first word of each shell command)."""
    if rest.startswith("["):
        exec_form = json.loads(rest)
        return [str(exec_form[0])] if exec_form else []
    words = []
    for segment in re.split(r"&&|\|\||;|\|", rest):
        parts = shlex.split(segment)
        if parts:
            words.append(parts[0])
    return words


def _image_paths() -> dict[PurePosixPath, Path]:
    """Where the runtime stage copies repository files: image path → repository path."""
    final = _stages()[-1]
    workdir = PurePosixPath("/")
    copies: dict[PurePosixPath, Path] = {}
    for keyword, rest in final.instructions:
        if keyword == "WORKDIR":
            workdir = workdir / rest
        elif keyword in ("COPY", "ADD"):
            parts = [p for p in shlex.split(rest) if not p.startswith("--")]
            if any(p.startswith("--from") for p in shlex.split(rest)):
                continue
            *sources, dest = parts
            assert len(sources) == 1, f"Dockerfile: one source per COPY, please: {rest}"
            copies[workdir / dest] = ROOT / sources[0]
    return copies


def _repo_path(image_path: str) -> Path:
    """The repository file the image holds at ``image_path`` (fails if none is copied there)."""
    path = PurePosixPath(image_path)
    for dest, source in _image_paths().items():
        if path == dest or dest in path.parents:
            return source / path.relative_to(dest)
    pytest.fail(f"{image_path} is not copied into the image by any COPY of the Dockerfile")


def _dockerignored(relative: str) -> bool:
    """Whether ``.dockerignore`` keeps a repository path out of the build context."""
    ignored = False
    candidates = [relative, *(str(p) for p in PurePosixPath(relative).parents if str(p) != ".")]
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        patterns = [pattern, pattern[3:]] if pattern.startswith("**/") else [pattern]
        if any(fnmatch.fnmatchcase(c, p) for c in candidates for p in patterns):
            ignored = not negate
    return ignored


def _project_scripts() -> set[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return set(pyproject["project"]["scripts"])


# --- tests: compose ------------------------------------------------------------------------


def test_compose_resolves_with_the_example_env(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == EXPECTED_SERVICES


@pytest.mark.parametrize("secret", SECRETS)
def test_compose_refuses_to_run_without_a_secret(
    secret: str, example_env: dict[str, str], tmp_path: Path, compose_home: Path
) -> None:
    env_file = tmp_path / "partial.env"
    env_file.write_text(
        "".join(f"{k}={v}\n" for k, v in example_env.items() if k != secret), encoding="utf-8"
    )
    result = _compose_config(env_file, compose_home)
    assert result.returncode != 0, f"docker-compose config resolved without {secret}"
    assert f"{secret} is not set" in result.stderr


def test_example_env_sets_every_variable_compose_uses(example_env: dict[str, str]) -> None:
    used = set(re.findall(r"\$\{(\w+)", COMPOSE_FILE.read_text(encoding="utf-8")))
    assert used <= set(example_env), f"not in .env.example: {sorted(used - set(example_env))}"
    assert all(example_env[s] for s in SECRETS)


def test_collector_points_at_influxdb_and_broker(
    services: dict[str, dict[str, Any]], example_env: dict[str, str]
) -> None:
    collector = services["collector"]
    env = _environment(collector)
    assert env["COLLECTOR_INFLUX__URL"] == "http://influxdb:8086"
    assert env["COLLECTOR_INFLUX__MODE"] == "v2"
    assert env["COLLECTOR_INFLUX__ORG"] == example_env["PLANTKPI_INFLUX_ORG"]
    assert env["COLLECTOR_INFLUX__TOKEN"] == example_env["PLANTKPI_INFLUX_ADMIN_TOKEN"]
    assert env["COLLECTOR_BROKER__URL"] == "mqtt://mosquitto:1883"
    assert env["COLLECTOR_API__HOST"] == "0.0.0.0"
    port = int(env.get("COLLECTOR_API__PORT", "8080"))
    assert {"published": 8080, "target": port} in collector["ports"]
    health = " ".join(collector["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/health" in health
    assert _command(collector)[:2] == ["plantkpi-collector", "run"]


def _settings_env_names(model: type[BaseModel], prefix: str) -> set[str]:
    names: set[str] = set()
    for name, info in model.model_fields.items():
        env_name = f"{prefix}{name.upper()}"
        names.add(env_name)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _settings_env_names(annotation, f"{env_name}__")
    return names


def test_collector_environment_is_valid_settings(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = _environment(services["collector"])
    # The settings ignore unknown variables, so a misspelt name would silently do nothing.
    known = _settings_env_names(CollectorSettings, "COLLECTOR_")
    unknown = sorted(k for k in env if k.startswith("COLLECTOR_") and k not in known)
    assert not unknown, f"not settings of the collector: {unknown}"

    registers = [str(_repo_path(p)) for p in json.loads(env["COLLECTOR_REGISTERS"])]
    monkeypatch.chdir(tmp_path)  # no .env of a developer
    for key in [k for k in os.environ if k.startswith("COLLECTOR_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("COLLECTOR_REGISTERS", json.dumps(registers))
    settings = CollectorSettings()
    assert settings.influx.url == "http://influxdb:8086"
    assert settings.influx.token is not None
    for path in settings.registers:
        load_register(path)


def test_influxdb_bucket_org_token_and_dbrp_agree(services: dict[str, dict[str, Any]]) -> None:
    influx = _environment(services["influxdb"])
    init = services["influxdb-init"]
    init_env = _environment(init)
    collector = _environment(services["collector"])
    database = collector.get("COLLECTOR_INFLUX__DATABASE", "plantkpi")

    assert influx["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    assert influx["DOCKER_INFLUXDB_INIT_BUCKET"] == database
    assert influx["DOCKER_INFLUXDB_INIT_ORG"] == collector["COLLECTOR_INFLUX__ORG"]
    assert influx["DOCKER_INFLUXDB_INIT_ORG"] == init_env["INFLUX_ORG"]
    assert influx["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"] == collector["COLLECTOR_INFLUX__TOKEN"]
    assert influx["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"] == init_env["INFLUX_TOKEN"]
    assert init_env["INFLUX_HOST"] == collector["COLLECTOR_INFLUX__URL"]
    assert "healthcheck" in services["influxdb"]

    script = " ".join(_command(init))
    assert f"influx bucket list --name {database} " in script
    assert re.search(rf"influx v1 dbrp create .*--db {database} --rp autogen --default", script)
    # Idempotent: the mapping is created only when none exists yet.
    assert f"influx v1 dbrp list --db {database} --rp autogen" in script
    assert init["restart"] == "no"
    assert init["depends_on"]["influxdb"]["condition"] == "service_healthy"
    depends = services["collector"]["depends_on"]
    assert depends["influxdb-init"]["condition"] == "service_completed_successfully"


def test_every_path_the_services_name_is_in_the_image_and_the_repo(
    services: dict[str, dict[str, Any]],
) -> None:
    checked = 0
    for name in sorted(PLANTKPI_SERVICES):
        service = services[name]
        values = [*_command(service), *_environment(service).values()]
        for value in values:
            paths = json.loads(value) if value.startswith('["') else [value]
            for path in paths:
                if not path.startswith("/app/"):
                    continue
                repo_path = _repo_path(path)
                relative = repo_path.relative_to(ROOT).as_posix()
                assert repo_path.is_file(), f"{name}: {path} → {relative} does not exist"
                assert not _dockerignored(relative), f"{name}: {relative} is in .dockerignore"
                checked += 1
    assert checked >= len(PLANTKPI_SERVICES)
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("/"):  # a bind mount (named volumes have no slash)
                assert Path(source).exists(), f"{name}: bind mount {source} does not exist"


def _scheme(source: Source) -> str:
    """The URL scheme of a source the simulators serve on an endpoint of its own."""
    return urlsplit(str(getattr(source, "endpoint", ""))).scheme


def _simulator_ports(services: dict[str, dict[str, Any]]) -> dict[str, int]:
    endpoints = _overrides(_command(services["simulators"]), "--endpoint")
    sources = {s.id: s for p in _demo_register(services).model.plants for s in p.sources}
    ports = {}
    for source_id, url in endpoints.items():
        parts = urlsplit(url)
        # The override's host is the address the OPC UA server or Modbus device binds;
        # edges in other containers reach it only on all interfaces.
        assert parts.scheme == _scheme(sources[source_id]) and parts.hostname == "0.0.0.0", url
        assert parts.port is not None, url
        ports[source_id] = parts.port
    return ports


def _demo_register(services: dict[str, dict[str, Any]]) -> LoadedRegister:
    scenario_path = _repo_path(_option(_command(services["simulators"]), "--scenario"))
    scenario = load_scenario(scenario_path)
    return scenario.register


def test_simulators_serve_every_source_of_the_scenario(
    services: dict[str, dict[str, Any]],
) -> None:
    simulators = services["simulators"]
    command = _command(simulators)
    assert command[:2] == ["plantkpi-sim", "run"]
    assert "--register" not in command  # the scenario names its register
    register = _demo_register(services)
    sources = [s for plant in register.model.plants for s in plant.sources]
    served = {s.id for s in sources if serves_endpoint(s.kind)}
    mqtt = {s.id for s in sources if isinstance(s, MqttSource)}
    ports = _simulator_ports(services)
    assert set(ports) == served
    assert len(set(ports.values())) == len(ports), f"two sources on one port: {ports}"
    brokers = _overrides(command, "--broker")
    assert set(brokers) == mqtt
    assert {parse_broker_url(url).host for url in brokers.values()} == {"mosquitto"}
    health = " ".join(simulators["healthcheck"]["test"])
    for port in ports.values():
        assert str(port) in health, f"the simulators' healthcheck does not probe port {port}"


def test_one_edge_per_plant_reaching_the_simulators_and_the_broker(
    services: dict[str, dict[str, Any]],
) -> None:
    register = _demo_register(services)
    ports = _simulator_ports(services)
    collector_broker = _environment(services["collector"])["COLLECTOR_BROKER__URL"]
    register_paths = set()
    plants_served = set()
    for name in sorted(s for s in services if s.startswith("edge-")):
        command = _command(services[name])
        assert command[:2] == ["plantkpi-edge", "run"], name
        register_paths.add(_option(command, "--register"))
        plant_id = _option(command, "--plant")
        plant = next((p for p in register.model.plants if p.id == plant_id), None)
        assert plant is not None, f"{name}: plant {plant_id!r} is not in the register"
        assert plant_id not in plants_served, f"two edges serve {plant_id}"
        plants_served.add(plant_id)
        assert _option(command, "--uplink-broker") == collector_broker, name

        endpoints = _overrides(command, "--endpoint")
        served = {s.id: _scheme(s) for s in plant.sources if serves_endpoint(s.kind)}
        assert set(endpoints) == set(served), name
        for source_id, url in endpoints.items():
            want = f"{served[source_id]}://simulators:{ports[source_id]}"
            assert url == want, f"{name}: {source_id}"
        brokers = _overrides(command, "--broker")
        assert set(brokers) == {s.id for s in plant.sources if isinstance(s, MqttSource)}, name
        for url in brokers.values():
            assert parse_broker_url(url).host == "mosquitto", f"{name}: {url}"
    assert plants_served == {p.id for p in register.model.plants}
    # The edges read the same register as the simulators.
    assert {_repo_path(p) for p in register_paths} == {register.path.resolve()}


def test_brokers_use_the_mosquitto_listener(services: dict[str, dict[str, Any]]) -> None:
    conf = MOSQUITTO_CONF.read_text(encoding="utf-8")
    listeners = re.findall(r"^listener\s+(\d+)", conf, re.MULTILINE)
    assert listeners == ["1883"]
    assert re.search(r"^persistence\s+true", conf, re.MULTILINE)
    location = re.search(r"^persistence_location\s+(\S+)", conf, re.MULTILINE)
    assert location is not None
    volumes = [str(v) for v in services["mosquitto"]["volumes"]]
    assert any(v.endswith(":/mosquitto/config/mosquitto.conf:ro") for v in volumes)
    assert any(
        v.split(":")[1].rstrip("/") == location.group(1).rstrip("/")
        for v in volumes
        if not v.startswith("/")
    ), f"no volume holds mosquitto's persistence_location {location.group(1)}"
    urls = [_environment(services["collector"])["COLLECTOR_BROKER__URL"]]
    for name in ("simulators", "edge-plant-a", "edge-plant-b"):
        command = _command(services[name])
        urls += list(_overrides(command, "--broker").values())
        urls += _options(command, "--uplink-broker")
    for url in urls:
        address = parse_broker_url(url)
        assert (address.host, address.port, address.tls) == ("mosquitto", 1883, False), url


def test_plantkpi_services_share_one_image_built_here(
    services: dict[str, dict[str, Any]],
) -> None:
    scripts = _project_scripts()
    images = set()
    for name in sorted(PLANTKPI_SERVICES):
        service = services[name]
        assert Path(service["build"]["context"]) == ROOT, name
        images.add(service["image"])
        program = _command(service)[0]
        assert program in scripts, f"{name} runs {program!r}, not a [project.scripts] entry"
    assert len(images) == 1, images


# --- tests: Dockerfile and .dockerignore ---------------------------------------------------


def test_dockerfile_base_user_and_install() -> None:
    stages = _stages()
    assert {stage.base for stage in stages} == {"python:3.11-slim"}
    users = [rest for keyword, rest in stages[-1].instructions if keyword == "USER"]
    assert users, "the runtime stage sets no USER: it would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    installs = [
        rest
        for stage in stages
        for keyword, rest in stage.instructions
        if keyword == "RUN" and re.search(r"\bpip install\b", rest)
    ]
    assert len(installs) == 1, installs
    project, *others = installs[0].split("&&")
    words = shlex.split(project)
    assert words[-1] == ".", f"expected `pip install .`: {installs[0]}"
    assert not {"-e", "--editable"} & set(words)
    assert "[" not in installs[0], f"no extras in the image: {installs[0]}"
    # Only the file bootstrap.sh uses may add libraries installed without their dependencies.
    assert [shlex.split(o)[1:] for o in others] == [
        ["install", "--no-deps", "-r", "requirements-no-deps.txt"]
    ], installs[0]
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    assert "--no-deps -r requirements-no-deps.txt" in bootstrap


def test_dockerfile_console_scripts_are_declared() -> None:
    scripts = _project_scripts()
    final = _stages()[-1]
    programs = {
        word
        for keyword, rest in final.instructions
        if keyword in ("RUN", "CMD", "ENTRYPOINT")
        for word in _command_words(rest)
    }
    ours = {w for w in programs if w in scripts or w.startswith("plantkpi") or w == "kpi"}
    assert ours <= scripts, f"not in pyproject [project.scripts]: {sorted(ours - scripts)}"
    # The build runs every console script once, so a missing module or data file fails
    # the build rather than a service.
    assert ours == scripts, f"not smoke-tested by the Dockerfile: {sorted(scripts - ours)}"


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    for path in (".git", ".venv", ".demo", ".env", "tests/interop/node_modules", ".mypy_cache"):
        assert _dockerignored(path), f".dockerignore does not exclude {path}"
    for path in ("pyproject.toml", "README.md", "common", "edge", "collector", "simulators"):
        assert not _dockerignored(path), f".dockerignore excludes {path}, which the build needs"


# --- tests: Grafana ------------------------------------------------------------------------


def _grafana_mounts(services: dict[str, dict[str, Any]]) -> dict[str, Path]:
    """Container path → repository folder of the grafana service's bind mounts."""
    mounts = {}
    for volume in services["grafana"]["volumes"]:
        parts = str(volume).split(":")
        if parts[0].startswith("/"):
            mounts[parts[1]] = Path(parts[0])
    return mounts


def _schema_sections() -> dict[str, set[str]]:
    """Measurement → every backticked name in its section of docs/schema.md (tags, fields)."""
    sections: dict[str, set[str]] = {}
    current = None
    for line in SCHEMA_DOC.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^## `(\w+)`", line)
        if heading:
            current = heading.group(1)
            sections[current] = set()
        elif line.startswith("## "):
            current = None
        elif current is not None:
            sections[current] |= set(re.findall(r"`(\w+)`", line))
    return sections


def test_grafana_data_source_reads_the_collectors_database_with_its_token(
    services: dict[str, dict[str, Any]], example_env: dict[str, str]
) -> None:
    grafana = services["grafana"]
    assert grafana["image"].startswith("grafana/grafana-oss:")
    mounts = _grafana_mounts(services)
    assert mounts["/etc/grafana/provisioning"] == GRAFANA / "provisioning"
    doc = yaml.safe_load((GRAFANA / "provisioning/datasources/influxdb.yaml").read_text())
    (source,) = doc["datasources"]
    collector = _environment(services["collector"])
    assert source["type"] == "influxdb"
    assert source["url"] == collector["COLLECTOR_INFLUX__URL"]
    # InfluxQL (no "version: Flux"): answered by InfluxDB 2 through the DBRP mapping that
    # influxdb-init creates for the collector's database.
    assert source["jsonData"].get("version", "InfluxQL") == "InfluxQL"
    assert source["jsonData"]["dbName"] == collector.get("COLLECTOR_INFLUX__DATABASE", "plantkpi")
    assert source["jsonData"]["httpHeaderName1"] == "Authorization"
    header = source["secureJsonData"]["httpHeaderValue1"]
    variable = re.fullmatch(r"Token \$\{(\w+)\}", header)
    assert variable, f"the header is not 'Token ${{VAR}}': {header!r}"
    env = _environment(grafana)
    assert env[variable.group(1)] == example_env["PLANTKPI_INFLUX_ADMIN_TOKEN"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == example_env["PLANTKPI_GRAFANA_ADMIN_PASSWORD"]
    assert grafana["depends_on"]["influxdb-init"]["condition"] == "service_completed_successfully"
    # Loopback only: the UI is for the administrator, like the InfluxDB UI.
    assert [str(p).removesuffix("/tcp") for p in grafana["ports"]] == ["127.0.0.1:3000:3000"]


def test_grafana_dashboard_queries_what_the_collector_stores(
    services: dict[str, dict[str, Any]],
) -> None:
    mounts = _grafana_mounts(services)
    provider_doc = yaml.safe_load((GRAFANA / "provisioning/dashboards/plantkpi.yaml").read_text())
    (provider,) = provider_doc["providers"]
    folder = mounts[provider["options"]["path"]]
    dashboards = sorted(folder.glob("*.json"))
    assert dashboards, f"no dashboard JSON in {folder}"
    source_doc = yaml.safe_load((GRAFANA / "provisioning/datasources/influxdb.yaml").read_text())
    source_uid = source_doc["datasources"][0]["uid"]
    schema = _schema_sections()
    assert {"kpi_rate", "process_status"} <= set(schema)

    used: dict[str, set[str]] = {}
    scopes: set[str] = set()
    for path in dashboards:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        assert dashboard["uid"] and dashboard["panels"], path.name
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == source_uid, panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == source_uid, panel["title"]
                query = target["query"]
                measurement = re.search(r'FROM "(\w+)"', query)
                assert measurement, f"{panel['title']}: no FROM in {query!r}"
                name = measurement.group(1)
                assert name in schema, f"{panel['title']}: {name} is not in docs/schema.md"
                # Every quoted identifier but aliases (AS "...") is a tag or field.
                unaliased = re.sub(r'AS "[^"]+"', "", query)
                identifiers = set(re.findall(r'"([^"]+)"', unaliased)) - {name}
                unknown = identifiers - schema[name]
                assert not unknown, f"{panel['title']}: {sorted(unknown)} not in {name}'s schema"
                used.setdefault(name, set()).update(identifiers)
                scopes.update(re.findall(r"\"scope\" = '(\w+)'", query))
    # The same KPIs as the collector's page: rates per scope with their counts, and the
    # processes that do not count with their reasons.
    assert {"rate", "numerator", "denominator", "scope", "scope_id"} <= used["kpi_rate"]
    assert {"status", "reasons", "process"} <= used["process_status"]
    assert {"enterprise", "plant", "line"} <= scopes
