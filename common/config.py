"""Configuration from the environment, in one place for every process.

| variable | default | meaning |
| --- | --- | --- |
| STRONGROOM_HOST | 127.0.0.1 | address the gateway listens on |
| STRONGROOM_PORT | 4566 | the gateway's port (every AWS service) |
| STRONGROOM_DATA_DIR | ./data | databases, object bytes, HSM token, credentials |
| STRONGROOM_ACCOUNT_ID | 000000000000 | the account |
| STRONGROOM_REGION | us-east-1 | the region |
| STRONGROOM_ROOT_ACCESS_KEY_ID / STRONGROOM_ROOT_SECRET_ACCESS_KEY | generated | the root's credentials |
| STRONGROOM_KMS_PORT / _S3_PORT / _TRAIL_PORT | 4567 / 4568 / 4569 | internal gRPC ports (127.0.0.1) |
| STRONGROOM_GRPC_HOST | 127.0.0.1 | address the gRPC services bind (and are reached on, unless the next row says otherwise) |
| STRONGROOM_KMS_ADDR / _S3_ADDR / _TRAIL_ADDR | GRPC_HOST:port | where other processes reach a service (e.g. `kms:4567` in docker-compose) |
| STRONGROOM_PKCS11_MODULE | /usr/lib/softhsm/libsofthsm2.so | PKCS#11 module |
| STRONGROOM_PKCS11_TOKEN_LABEL | strongroom | token label |
| STRONGROOM_PKCS11_PIN | generated, kept in DATA_DIR/hsm/pin | user PIN |
| STRONGROOM_SOFTHSM2_CONF | DATA_DIR/hsm/softhsm2.conf | SoftHSM2 config (made on first start) |
| STRONGROOM_TRAIL_DELIVERY_SECONDS | 60 | how often trails deliver log files |
| STRONGROOM_TRAIL_DIGEST_SECONDS | 3600 | how often digest files are written |
| STRONGROOM_TRAIL_INSIGHT_BUCKET_SECONDS | 60 | Insights: width of one rate bucket |
| STRONGROOM_TRAIL_INSIGHT_BASELINE_BUCKETS | 60 | Insights: buckets in the baseline |
| STRONGROOM_TRAIL_INSIGHT_MIN_HISTORY_BUCKETS | 5 | Insights: buckets of history before any insight |
| STRONGROOM_TRAIL_INSIGHT_FACTOR | 3 | Insights: how far above the baseline a rate must go |
| STRONGROOM_TRAIL_INSIGHT_MIN_COUNT | 10 | Insights: the least calls in a bucket that can start one |
| STRONGROOM_LOG_LEVEL | info | log level |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 4566
    data_dir: Path = Path("data")
    account_id: str = "000000000000"
    region: str = "us-east-1"
    root_access_key_id: str | None = None
    root_secret_access_key: str | None = None
    grpc_host: str = "127.0.0.1"
    kms_port: int = 4567
    s3_port: int = 4568
    trail_port: int = 4569
    kms_addr: str | None = None
    s3_addr: str | None = None
    trail_addr: str | None = None
    pkcs11_module: str = "/usr/lib/softhsm/libsofthsm2.so"
    pkcs11_token_label: str = "strongroom"
    pkcs11_pin: str | None = None
    softhsm2_conf: Path | None = None
    trail_delivery_seconds: float = 60.0
    trail_digest_seconds: float = 3600.0
    trail_insight_bucket_seconds: float = 60.0
    trail_insight_baseline_buckets: int = 60
    trail_insight_min_history_buckets: int = 5
    trail_insight_factor: float = 3.0
    trail_insight_min_count: int = 10
    log_level: str = "info"

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(_env("STRONGROOM_DATA_DIR", "data")).resolve()
        conf = os.environ.get("STRONGROOM_SOFTHSM2_CONF")
        return cls(
            host=_env("STRONGROOM_HOST", "127.0.0.1"),
            port=int(_env("STRONGROOM_PORT", "4566")),
            data_dir=data_dir,
            account_id=_env("STRONGROOM_ACCOUNT_ID", "000000000000"),
            region=_env("STRONGROOM_REGION", "us-east-1"),
            root_access_key_id=os.environ.get("STRONGROOM_ROOT_ACCESS_KEY_ID") or None,
            root_secret_access_key=os.environ.get("STRONGROOM_ROOT_SECRET_ACCESS_KEY") or None,
            grpc_host=_env("STRONGROOM_GRPC_HOST", "127.0.0.1"),
            kms_port=int(_env("STRONGROOM_KMS_PORT", "4567")),
            s3_port=int(_env("STRONGROOM_S3_PORT", "4568")),
            trail_port=int(_env("STRONGROOM_TRAIL_PORT", "4569")),
            kms_addr=os.environ.get("STRONGROOM_KMS_ADDR") or None,
            s3_addr=os.environ.get("STRONGROOM_S3_ADDR") or None,
            trail_addr=os.environ.get("STRONGROOM_TRAIL_ADDR") or None,
            pkcs11_module=_env("STRONGROOM_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so"),
            pkcs11_token_label=_env("STRONGROOM_PKCS11_TOKEN_LABEL", "strongroom"),
            pkcs11_pin=os.environ.get("STRONGROOM_PKCS11_PIN") or None,
            softhsm2_conf=Path(conf) if conf else data_dir / "hsm" / "softhsm2.conf",
            trail_delivery_seconds=float(_env("STRONGROOM_TRAIL_DELIVERY_SECONDS", "60")),
            trail_digest_seconds=float(_env("STRONGROOM_TRAIL_DIGEST_SECONDS", "3600")),
            trail_insight_bucket_seconds=float(_env("STRONGROOM_TRAIL_INSIGHT_BUCKET_SECONDS", "60")),
            trail_insight_baseline_buckets=int(_env("STRONGROOM_TRAIL_INSIGHT_BASELINE_BUCKETS", "60")),
            trail_insight_min_history_buckets=int(_env("STRONGROOM_TRAIL_INSIGHT_MIN_HISTORY_BUCKETS", "5")),
            trail_insight_factor=float(_env("STRONGROOM_TRAIL_INSIGHT_FACTOR", "3")),
            trail_insight_min_count=int(_env("STRONGROOM_TRAIL_INSIGHT_MIN_COUNT", "10")),
            log_level=_env("STRONGROOM_LOG_LEVEL", "info"),
        )

    def _target(self, addr: str | None, port: int) -> str:
        if addr:
            return addr
        host = "127.0.0.1" if self.grpc_host in ("0.0.0.0", "") else self.grpc_host
        return f"{host}:{port}"

    @property
    def kms_target(self) -> str:
        return self._target(self.kms_addr, self.kms_port)

    @property
    def s3_target(self) -> str:
        return self._target(self.s3_addr, self.s3_port)

    @property
    def trail_target(self) -> str:
        return self._target(self.trail_addr, self.trail_port)

    def service_dir(self, name: str) -> Path:
        path = self.data_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path
