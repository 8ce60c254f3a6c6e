# The mado-gateway container image. Built offline from a reviewed wheelhouse:
#
#   pip download --dest wheels --only-binary=:all: . hatchling
#   podman build --format docker --network=none --build-context wheels=wheels \
#       --tag mado-gateway:0.1.0 .
#
# (`docker buildx build --build-context wheels=wheels ...` is the same.) Nothing is fetched
# during the build: the third-party wheels and hatchling, the build backend, come from the
# "wheels" build context, the gateway from this repository. `--format docker` keeps the
# HEALTHCHECK, which the OCI image format has no field for.
#
# BASE_IMAGE must provide python3 with venv, of the Python version the wheels were downloaded
# for (3.11, the default of `pip download` here): the official slim image by default; the tests
# use a Debian bookworm made with debootstrap (tests/deploy/).
#
# The running container: user 10001, no capabilities needed (port 8080 is unprivileged), a
# read-only root filesystem, and one writable volume, /var/lib/mado-gateway, the working
# directory, which holds the audit journal (relative paths of the configuration land there).
# The configuration is read from /etc/mado-gateway/config.yaml (mount it: a ConfigMap).
ARG BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm

# Replaced by `--build-context wheels=DIR` (a named context overrides the stage of its name);
# left empty, the install below fails naming the first wheel it misses.
FROM scratch AS wheels

FROM ${BASE_IMAGE} AS build
COPY --from=wheels . /wheels/
COPY pyproject.toml hatch_build.py README.md /src/
COPY routing /src/routing
COPY mado /src/mado
COPY gateway /src/gateway
# --no-index: the wheelhouse or nothing; a missing wheel fails the build instead of
# being fetched. Byte code is compiled now, as the root filesystem is read-only later.
RUN python3 -m venv /opt/mado-gateway \
    && /opt/mado-gateway/bin/pip install --no-cache-dir --no-index --find-links=/wheels \
        --compile /src \
    && /opt/mado-gateway/bin/pip uninstall --yes pip \
    && /opt/mado-gateway/bin/mado-gateway --version

FROM ${BASE_IMAGE}
ARG UID=10001
RUN useradd --system --uid "${UID}" --user-group --no-create-home \
        --home-dir /var/lib/mado-gateway --shell /usr/sbin/nologin mado-gateway \
    && install -d -o "${UID}" -g "${UID}" -m 0750 /var/lib/mado-gateway \
    && install -d -m 0755 /etc/mado-gateway
COPY --from=build /opt/mado-gateway /opt/mado-gateway
COPY examples/responding-gateway.yaml /usr/share/doc/mado-gateway/examples/
ENV PATH=/opt/mado-gateway/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MADO_GATEWAY_HEALTH_URL=http://127.0.0.1:8080/livez
VOLUME ["/var/lib/mado-gateway"]
WORKDIR /var/lib/mado-gateway
USER ${UID}:${UID}
EXPOSE 8080
# No curl in the image: the interpreter that runs the gateway asks /livez. Set
# MADO_GATEWAY_HEALTH_URL when the configuration listens elsewhere.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['MADO_GATEWAY_HEALTH_URL'], timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["mado-gateway"]
CMD ["serve", "--config", "/etc/mado-gateway/config.yaml"]
