# swim-node (the swim_py node agent) from this working tree, on the local
# base image.
#
# Build with docker/build-images.sh, which first makes the base image and
# docker/.deps/wheels/ (protobuf and the build backend, fetched on the host
# with `pip download`), because pip in the build container has no TLS trust
# for the package index. The context is the repository root.

ARG BASE_IMAGE=swim-base:trixie

FROM ${BASE_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/swim-py
COPY docker/.deps/wheels/ /wheels/

# Dependency layer: install the runtime dependencies that pyproject.toml
# lists, so a source change reinstalls only swim_py itself.
COPY pyproject.toml /src/
RUN python3 -c 'import tomllib; print("\n".join(tomllib.load(open("/src/pyproject.toml", "rb"))["project"]["dependencies"]))' >/tmp/requirements.txt \
    && /opt/swim-py/bin/pip install --no-cache-dir --no-index --find-links /wheels -r /tmp/requirements.txt

COPY README.md LICENSE /src/
COPY swim_py/ /src/swim_py/
COPY conformance/ /src/conformance/
RUN /opt/swim-py/bin/pip install --no-cache-dir --no-index --find-links /wheels /src \
    && /opt/swim-py/bin/pip uninstall --yes pip \
    && /opt/swim-py/bin/swim-node --help >/dev/null

FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/*
# The venv's interpreter links to /usr/bin/python3, which this stage
# installs from the same suite as the build stage.
COPY --from=build /opt/swim-py /opt/swim-py
ENV PATH=/opt/swim-py/bin:$PATH PYTHONUNBUFFERED=1
USER 65534:65534
ENTRYPOINT ["/opt/swim-py/bin/swim-node"]
