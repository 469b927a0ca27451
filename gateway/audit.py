"""CloudTrail records for the calls the gateway serves itself (IAM, STS).

Parameters and response elements are written as CloudTrail does (member names in
lowerCamelCase, timestamps ISO 8601) with every secret removed at any depth
(common.audit.SECRET_MEMBERS: SecretAccessKey, SessionToken, ...). Read-only calls record no
response elements, as AWS does.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from strongroom.common.v1 import caller_pb2

from common.audit import SECRET_MEMBERS, AuditSink, build_event, iso_time


def scrub(value: Any) -> Any:
    """An AWS value -> CloudTrail JSON: secrets and blobs dropped, keys lowerCamelCase."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in SECRET_MEMBERS or isinstance(v, (bytes, bytearray)):
                continue
            out[k[:1].lower() + k[1:]] = scrub(v)
        return out
    if isinstance(value, list):
        return [scrub(v) for v in value if not isinstance(v, (bytes, bytearray))]
    if isinstance(value, datetime):
        return iso_time(value.astimezone(timezone.utc))
    return value


def record_call(sink: AuditSink, *, caller: caller_pb2.Caller, event_source: str,
                operation: str, region: str, account_id: str, params: dict[str, Any] | None,
                result: dict[str, Any] | None, read_only: bool, error_code: str | None = None,
                error_message: str | None = None) -> None:
    try:
        event = build_event(
            caller=caller,
            event_source=event_source,
            event_name=operation,
            region=region,
            recipient_account_id=account_id,
            request_parameters=scrub(params) if params else None,
            response_elements=None if (read_only or result is None) else scrub(result),
            read_only=read_only,
            error_code=error_code,
            error_message=error_message,
            request_id=caller.request_id or None,
        )
        sink.record(event)
    except Exception:  # noqa: BLE001 - auditing must never break the call
        from common.logging import get_logger

        get_logger(__name__).error("audit_record_failed", operation=operation, exc_info=True)
