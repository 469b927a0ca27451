# One image for the four Strongroom processes (see docker-compose.yml).
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends softhsm2 make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.lock ./
RUN python -m venv .venv && .venv/bin/pip install --no-cache-dir -r requirements.lock
COPY . .
RUN make gen
ENV STRONGROOM_DATA_DIR=/data \
    STRONGROOM_GRPC_HOST=0.0.0.0
VOLUME ["/data"]
EXPOSE 4566
CMD ["make", "run"]
