# convintel API image: the shipped bundle baked in, no network needed at run time.
#
#   docker build -t convintel .
#   docker build -t convintel --build-arg CONVINTEL_ENCODER_BACKEND=onnx-int8 .   # ONNX graph baked in
#   docker run -p 8000:8000 -v convintel-data:/data convintel
#
# Two stages: the builder makes a wheel of this project and installs it, with the CPU build
# of torch, into a virtual environment at /opt/convintel; the runtime stage copies only that
# environment (no build tools, no source tree) and runs as a non-root user.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/convintel/bin:$PATH

RUN python -m venv /opt/convintel

# The CPU build of torch first: from PyPI alone, torch brings gigabytes of CUDA libraries.
# Keep the version equal to pyproject.toml's pin (tests/system/test_packaging.py checks it).
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

WORKDIR /src
COPY pyproject.toml README.md ./
COPY nlp ./nlp
COPY service ./service
COPY training ./training
# Only the shipped bundle: it goes into the wheel as package data (nlp/bundled_models/).
COPY models/convintel-base ./models/convintel-base

# Extras to install with it, comma-separated (e.g. "onnx,ray"); the ONNX backends need "onnx",
# a PostgreSQL store (CONVINTEL_DATABASE_URL) "postgres".
ARG EXTRAS=onnx,postgres
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && wheel="$(ls /wheels/convintel-*.whl)" \
    && pip install "${wheel}${EXTRAS:+[${EXTRAS}]}"


FROM ${PYTHON_IMAGE} AS runtime

# State in /data (a volume); the ONNX graph cache in the image, where a build can bake it in
# and a volume over /data cannot hide it. Both belong to the convintel user.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/convintel/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    CONVINTEL_HOST=0.0.0.0 \
    CONVINTEL_PORT=8000 \
    CONVINTEL_DB_PATH=/data/conversations.sqlite3 \
    CONVINTEL_ENCODER_CACHE_DIR=/var/cache/convintel/encoders

RUN useradd --create-home --uid 10001 convintel \
    && mkdir -p /data /var/cache/convintel/encoders \
    && chown -R convintel:convintel /data /var/cache/convintel

COPY --from=builder /opt/convintel /opt/convintel

USER convintel
# Relative paths in settings resolve here: nothing is written next to the installed package.
WORKDIR /data

# torch (default), onnx or onnx-int8. An ONNX backend's graph is exported here, at build time,
# by the same check `convintel serve` runs first; with torch the check only validates the
# bundle, policy and categories, so a broken image fails its build, not its first start.
ARG CONVINTEL_ENCODER_BACKEND=torch
ENV CONVINTEL_ENCODER_BACKEND=${CONVINTEL_ENCODER_BACKEND}
RUN convintel check

VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"

# `convintel serve` checks the bundle, policy, categories and keys first (one clear line on a
# bad one), writes JSON logs and listens on CONVINTEL_HOST:CONVINTEL_PORT.
CMD ["convintel", "serve"]
