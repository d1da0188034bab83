# The ceso image: the `ceso` CLI, workers (`ceso worker`), Celery beat, Flower and `cesod`.
# docker-compose.yml builds it and runs every ceso service from it.
#
# No secret is baked in: docker-compose.yml keeps ESXi passwords and keys in PostgreSQL, encrypted
# under the master key it mounts as a secret (secret_store: sql; the image's own default is the
# encrypted file in the data volume); database and Flower passwords come from compose secrets at
# run time (ops/docker/entrypoint.sh).
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY ceso ceso
COPY workers workers
RUN python -m venv /opt/ceso \
    && /opt/ceso/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/ceso/bin/pip install --no-cache-dir . "flower>=2.0"

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/ceso --shell /usr/sbin/nologin ceso \
    && install -d -o ceso -g ceso -m 0700 /var/lib/ceso
COPY --from=build /opt/ceso /opt/ceso
COPY ops/docker/entrypoint.sh /usr/local/bin/ceso-entrypoint
ENV PATH=/opt/ceso/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    CESO_DATA_DIR=/var/lib/ceso \
    CESO_SECRET_STORE=file
USER ceso
WORKDIR /var/lib/ceso
# 9810 worker /metrics, 9811 `ceso metrics serve`, 5555 Flower, 8470 cesod, 9813 cesod's /metrics.
EXPOSE 9810 9811 5555 8470 9813
ENTRYPOINT ["/usr/local/bin/ceso-entrypoint"]
CMD ["ceso", "--help"]
