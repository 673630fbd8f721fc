# One image for every plantkpi service; docker-compose.yml picks the command:
#   plantkpi-sim run ...        equipment simulators (OPC UA, Modbus, S7, MTConnect, MQTT)
#   plantkpi-edge run ...       edge agent, one per plant
#   plantkpi-collector run      central collector and HTTP API (port 8080)
#   kpi --api http://...        the KPI table in a terminal
#   plantkpi register check F   check a register file before it is deployed
# Build: docker build -t plantkpi .   (or: docker-compose build)

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: install the project and its dependencies into a venv ---------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/plantkpi
WORKDIR /src
COPY pyproject.toml README.md ./
COPY common/ common/
COPY edge/ edge/
COPY collector/ collector/
COPY simulators/ simulators/
COPY onboarding/ onboarding/
COPY requirements-no-deps.txt ./
# A regular (not editable) install without the dev extras: the runtime stage needs only
# /opt/plantkpi, not the sources. Then the libraries installed without their dependencies
# (requirements-no-deps.txt says why).
RUN /opt/plantkpi/bin/pip install . \
    && /opt/plantkpi/bin/pip install --no-deps -r requirements-no-deps.txt

# --- runtime -----------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/plantkpi/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 plantkpi \
    && useradd --system --uid 10001 --gid plantkpi --create-home --home-dir /home/plantkpi \
       --shell /usr/sbin/nologin plantkpi
# The printable report (kpi report-doc, /api/v1/report-doc): WeasyPrint draws with Pango,
# and Chinese needs the Noto CJK fonts.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/plantkpi /opt/plantkpi
# The demo register and scenario, at /app/examples/demo/. A real register is mounted
# read-only over a path of its own (docs/deployment.md). Owned by root: the services only
# read them.
WORKDIR /app
COPY examples/ examples/
# The edge's store-and-forward buffer and OPC UA PKI folder (volumes in docker-compose.yml), owned by the
# runtime user so a fresh named volume inherits a writable directory.
RUN mkdir -p /var/lib/plantkpi/buffer /var/lib/plantkpi/pki && chown -R 10001:10001 /var/lib/plantkpi
# Numeric ids, so an orchestrator can verify the image does not run as root.
USER 10001:10001
# Smoke test as the runtime user: every console script imports and starts.
RUN plantkpi-sim --help >/dev/null \
    && plantkpi-edge --help >/dev/null \
    && plantkpi-collector --help >/dev/null \
    && kpi --help >/dev/null \
    && plantkpi --help >/dev/null
EXPOSE 8080
CMD ["plantkpi-collector", "run"]
