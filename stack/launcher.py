"""Start and stop a real stack on free ports (integration tests, benchmarks).

Every port is a free 127.0.0.1 port chosen at start; the data directory (databases, object
bytes, the SoftHSM2 token) is a fresh temporary folder. ``Stack.stop`` sends SIGTERM to the
supervisor (which stops its children) and waits; nothing is left running.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT_ID = "111122223333"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    data_dir: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    access_key_id: str = "AKIAROOTROOTROOTROOT"
    secret_access_key: str = field(default_factory=lambda: "root-secret/" + os.urandom(12).hex())

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.env['STRONGROOM_PORT']}"

    def port_of(self, service: str) -> int:
        return int(self.env[f"STRONGROOM_{service.upper()}_PORT"])

    def client(self, service: str, **kwargs: Any) -> Any:
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(
            aws_access_key_id=kwargs.pop("aws_access_key_id", self.access_key_id),
            aws_secret_access_key=kwargs.pop("aws_secret_access_key", self.secret_access_key),
            aws_session_token=kwargs.pop("aws_session_token", None),
            region_name=REGION,
        )
        config = kwargs.pop("config", Config(retries={"max_attempts": 1}))
        return session.client(service, endpoint_url=self.endpoint, config=config, **kwargs)

    def cli_env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=self.access_key_id,
            AWS_SECRET_ACCESS_KEY=self.secret_access_key,
            AWS_DEFAULT_REGION=REGION,
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_MAX_ATTEMPTS="1",
            AWS_CONFIG_FILE=str(self.data_dir / "aws-config-none"),
            AWS_SHARED_CREDENTIALS_FILE=str(self.data_dir / "aws-credentials-none"),
        )
        env.update(extra)
        return env

    def aws(self, *args: str, check: bool = True, **extra_env: str) -> subprocess.CompletedProcess[str]:
        """Run the AWS CLI (the venv's ``aws``) against the stack; JSON output."""
        aws = str(Path(sys.executable).parent / "aws")
        result = subprocess.run([aws, "--output", "json", *args], env=self.cli_env(**extra_env),
                                capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed: {result.stderr}")
        return result

    def aws_json(self, *args: str) -> Any:
        out = self.aws(*args).stdout
        return json.loads(out) if out.strip() else None

    def health(self) -> tuple[int, dict[str, Any] | None]:
        try:
            with urllib.request.urlopen(self.endpoint + "/_strongroom/health", timeout=2) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, None
        except OSError:
            return 0, None

    def start(self, timeout: float = 90.0) -> None:
        self.log_path = self.data_dir / "stack.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept for the process lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stack"], cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"stack exited early:\n{self.tail_log()}")
            status, _ = self.health()
            if status == 200:
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"stack not healthy within {timeout}s:\n{self.tail_log()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        # Children are in the supervisor's session: make sure none is left.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc = None

    def tail_log(self, n: int = 80) -> str:
        if self.log_path and self.log_path.exists():
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return ""


def make_stack(**overrides: str) -> Stack:
    data_dir = Path(tempfile.mkdtemp(prefix="strongroom-test-"))
    stack = Stack(data_dir=data_dir, env={})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRONGROOM_", "AWS_"))}
    env.update(
        STRONGROOM_HOST="127.0.0.1",
        STRONGROOM_PORT=str(free_port()),
        STRONGROOM_KMS_PORT=str(free_port()),
        STRONGROOM_S3_PORT=str(free_port()),
        STRONGROOM_TRAIL_PORT=str(free_port()),
        STRONGROOM_DATA_DIR=str(data_dir),
        STRONGROOM_ACCOUNT_ID=ACCOUNT_ID,
        STRONGROOM_REGION=REGION,
        STRONGROOM_ROOT_ACCESS_KEY_ID=stack.access_key_id,
        STRONGROOM_ROOT_SECRET_ACCESS_KEY=stack.secret_access_key,
        STRONGROOM_TRAIL_DELIVERY_SECONDS="2",
        STRONGROOM_LOG_LEVEL="info",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    stack.env = env
    return stack


def remove(stack: Stack) -> None:
    stack.stop()
    shutil.rmtree(stack.data_dir, ignore_errors=True)
