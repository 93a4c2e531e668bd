# syntax=docker/dockerfile:1
# Build stage: install the package and its dependencies into a virtualenv.
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends gcc \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY common common
COPY esign esign
COPY license_store license_store
COPY verifier verifier
COPY templates templates
COPY elicense elicense
RUN python -m venv /opt/elicense \
    && /opt/elicense/bin/pip install ".[pkcs11]"

# Runtime stage: the virtualenv, poppler for PNG previews, a non-root user.
FROM python:3.11-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends poppler-utils softhsm2 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --uid 10001 elicense \
    && mkdir /data && chown elicense /data
COPY --from=build /opt/elicense /opt/elicense
ENV PATH=/opt/elicense/bin:$PATH \
    ELICENSE_DATA_DIR=/data \
    ELICENSE_PUBLIC_URL=http://127.0.0.1:8000
USER elicense
VOLUME /data
EXPOSE 8000
# Production sets ELICENSE_ENVIRONMENT=production, ELICENSE_DATABASE_URL and
# ELICENSE_KEY_PASSPHRASE_FILE (a mounted secret) instead of the dev defaults.
CMD ["elicense", "serve", "--data-dir", "/data", "--host", "0.0.0.0", "--port", "8000"]
