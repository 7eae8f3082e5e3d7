# The Bidao gateway image (compose.yaml builds it). Settings come from BIDAO_* environment
# variables (gateway/config.py); the SQLite store lives in the /data volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY firmware_protocol ./firmware_protocol
COPY gateway ./gateway
COPY alerts ./alerts
COPY api ./api
COPY device_sim ./device_sim
RUN pip install /src && rm -rf /src

# A user of its own, no login, no root: it owns only the data and broker-auth folders
# (a new named volume takes the owner of the folder it is mounted on).
RUN groupadd --system --gid 10001 bidao \
    && useradd --system --uid 10001 --gid bidao --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin bidao \
    && mkdir -p /data /broker-auth /sim \
    && chown bidao:bidao /data /broker-auth /sim
USER bidao:bidao
WORKDIR /data

ENV BIDAO_DATA_DIR=/data \
    BIDAO_MQTT__EMBEDDED_BROKER=false \
    BIDAO_HTTP__HOST=0.0.0.0 \
    BIDAO_HTTP__PORT=8080
EXPOSE 8080
VOLUME ["/data"]

# 200 only while the gateway serves (store writable, links up, loop not stalled): /healthz.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]

ENTRYPOINT ["bidao"]
CMD ["run"]
