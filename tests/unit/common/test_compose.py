"""docker-compose.yml runs the same processes as `make run` with the same configuration."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from common.config import Settings
from stack.__main__ import CHILDREN

ROOT = Path(__file__).resolve().parents[3]


def test_compose_matches_the_code() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {name for name, _ in CHILDREN}
    defaults = Settings()
    ports = {"kms": defaults.kms_port, "s3": defaults.s3_port, "trail": defaults.trail_port}
    for name, module in CHILDREN:
        svc = services[name]
        command = svc["command"]
        assert command[1:] == ["-m", module], name
        assert importlib.util.find_spec(module) is not None, module
        env = svc["environment"]
        for key in env:
            assert key.startswith("STRONGROOM_"), key
        if name in ports:
            assert env[f"STRONGROOM_{name.upper()}_PORT"] == str(ports[name])
            assert svc["expose"] == [str(ports[name])]
    gw = services["gateway"]
    assert gw["ports"] == [f"{defaults.port}:{defaults.port}"]
    assert gw["environment"]["STRONGROOM_PORT"] == str(defaults.port)
    for name in ports:
        assert gw["environment"][f"STRONGROOM_{name.upper()}_ADDR"] == f"{name}:{ports[name]}"
    assert (ROOT / "Dockerfile").exists()
