"""The authenticated caller as it travels with every RPC.

The gateway puts a ``strongroom.common.v1.Caller`` into binary gRPC metadata under
``CALLER_METADATA_KEY``. Services read it with :func:`caller_from_metadata`. A call without
it (a direct gRPC client) acts as the configured account's root.
"""

from __future__ import annotations

from collections.abc import Iterable

from strongroom.common.v1 import caller_pb2

from common.policy_principal import principal_from_caller  # noqa: F401  (re-export)

CALLER_METADATA_KEY = "strongroom-caller-bin"

Caller = caller_pb2.Caller


def root_caller(account_id: str, region: str) -> caller_pb2.Caller:
    return caller_pb2.Caller(
        principal_type="Root",
        account_id=account_id,
        principal_arn=f"arn:aws:iam::{account_id}:root",
        principal_id=account_id,
        region=region,
        source_ip="127.0.0.1",
    )


def service_caller(account_id: str, service: str, region: str) -> caller_pb2.Caller:
    """An AWS service principal (e.g. cloudtrail.amazonaws.com) acting in ``account_id``."""
    return caller_pb2.Caller(
        principal_type="AWSService",
        account_id=account_id,
        service_principal=service,
        invoked_by=service,
        source_ip=service,
        user_agent=service,
        region=region,
    )


def caller_metadata(caller: caller_pb2.Caller) -> tuple[tuple[str, bytes], ...]:
    return ((CALLER_METADATA_KEY, caller.SerializeToString()),)


def caller_from_metadata(metadata: Iterable[tuple[str, str | bytes]] | None,
                         account_id: str, region: str) -> caller_pb2.Caller:
    for key, value in metadata or ():
        if key == CALLER_METADATA_KEY and isinstance(value, bytes):
            caller = caller_pb2.Caller()
            caller.ParseFromString(value)
            return caller
    return root_caller(account_id, region)
