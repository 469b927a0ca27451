"""Bridge: a wire Caller -> the policy engine's Principal."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from strongroom.common.v1 import caller_pb2

    from common.policy import Principal


def principal_from_caller(caller: caller_pb2.Caller) -> Principal:
    from common.policy import Principal

    kind = caller.principal_type or "Anonymous"
    role_arn = None
    if kind == "AssumedRole" and caller.HasField("session_context"):
        role_arn = caller.session_context.session_issuer.arn or None
    return Principal(
        arn=caller.principal_arn or None,
        account=caller.account_id or None,
        kind=kind,
        service=caller.service_principal or None,
        role_arn=role_arn,
        user_name=caller.user_name or None,
        user_id=caller.principal_id or None,
    )
