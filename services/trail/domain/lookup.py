"""LookupEvents: request validation, the query it becomes, and its NextToken.

Mirrors https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_LookupEvents.html:

* management events (or, with ``EventCategory=insight``, Insights events) of the last
  90 days, newest first;
* one lookup attribute ("Currently the list can contain only one item"): like the live
  service, only the first is honoured and any further ones are ignored; every attribute
  given must still be valid: a key of :data:`LOOKUP_KEYS`, a value of 1-2000 characters
  (``ReadOnly`` takes ``true`` / ``false``); Insights lookups accept only EventId, EventName
  and EventSource;
* ``StartTime`` <= ``EndTime``; ``MaxResults`` 1-50 (default 50);
* ``NextToken`` must come back with the same parameters as the call that returned it.

NextToken layout (opaque to clients): base64url( JSON [v, event_time_ms, seq, query-hash] ) +
"." + base64url(HMAC-SHA256(token-key, payload)[:16]). Position is the last returned event
(time, seq); the hash binds the token to the query; the MAC makes tokens unforgeable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime

from services.trail.domain.errors import err

LOOKUP_KEYS = (
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
)
INSIGHT_LOOKUP_KEYS = ("EventId", "EventName", "EventSource")
RETENTION_MS = 90 * 24 * 3600 * 1000
MAX_RESULTS = 50
TOKEN_VERSION = 1


@dataclass(frozen=True, slots=True)
class LookupQuery:
    attribute_key: str | None
    attribute_value: str | None
    start_ms: int  # inclusive
    end_ms: int  # inclusive
    insight: bool
    max_results: int

    def fingerprint(self) -> str:
        """Identifies the query a NextToken belongs to (times as the caller gave them)."""
        text = json.dumps([self.attribute_key, self.attribute_value, self.insight, self.max_results])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Position:
    event_time_ms: int
    seq: int


def _to_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def build_query(
    *,
    attributes: list[tuple[str, str]],
    start: datetime | None,
    end: datetime | None,
    event_category: str,
    max_results: int | None,
    now_ms: int,
) -> LookupQuery:
    """Validate a LookupEvents request (AWS's errors) and return the query it asks for."""
    insight = False
    if event_category:
        if event_category != "insight":
            raise err(
                "InvalidEventCategoryException",
                f"Event category {event_category} is not valid. Valid value is insight.",
            )
        insight = True
    if max_results is not None and not 1 <= max_results <= MAX_RESULTS:
        raise err(
            "InvalidMaxResultsException",
            f"Value {max_results} for MaxResults is invalid. It must be between 1 and 50.",
        )
    key: str | None = None
    value: str | None = None
    allowed = INSIGHT_LOOKUP_KEYS if insight else LOOKUP_KEYS
    for key, value in reversed(attributes):  # validate all; the first one wins
        if key not in allowed:
            raise err(
                "InvalidLookupAttributesException",
                f"Lookup attribute key {key} is not valid. Valid keys are: {', '.join(allowed)}.",
            )
        if not value or len(value) > 2000:
            raise err(
                "InvalidLookupAttributesException",
                "Lookup attribute value must be between 1 and 2000 characters long.",
            )
        if key == "ReadOnly" and value not in ("true", "false"):
            raise err(
                "InvalidLookupAttributesException",
                f"Lookup attribute value {value} for key ReadOnly is not valid. "
                "Valid values are: true, false.",
            )
    start_ms = _to_ms(start) if start is not None else now_ms - RETENTION_MS
    end_ms = _to_ms(end) if end is not None else now_ms
    if start is not None and end is not None and start_ms > end_ms:
        raise err("InvalidTimeRangeException", "Start time must be before end time.")
    start_ms = max(start_ms, now_ms - RETENTION_MS)
    return LookupQuery(
        attribute_key=key,
        attribute_value=value,
        start_ms=start_ms,
        end_ms=end_ms,
        insight=insight,
        max_results=max_results or MAX_RESULTS,
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_token(secret: bytes, query: LookupQuery, pos: Position) -> str:
    payload = json.dumps(
        [TOKEN_VERSION, pos.event_time_ms, pos.seq, query.fingerprint()], separators=(",", ":")
    ).encode()
    mac = hmac.new(secret, payload, hashlib.sha256).digest()[:16]
    return f"{_b64(payload)}.{_b64(mac)}"


def decode_token(secret: bytes, query: LookupQuery, token: str) -> Position:
    invalid = err("InvalidNextTokenException", "Invalid NextToken.")
    try:
        payload_text, mac_text = token.split(".", 1)
        payload = _unb64(payload_text)
        mac = _unb64(mac_text)
    except (ValueError, TypeError):
        raise invalid from None
    expected = hmac.new(secret, payload, hashlib.sha256).digest()[:16]
    if not hmac.compare_digest(mac, expected):
        raise invalid
    try:
        version, time_ms, seq, fingerprint = json.loads(payload)
    except (ValueError, TypeError):
        raise invalid from None
    if version != TOKEN_VERSION or not isinstance(time_ms, int) or not isinstance(seq, int):
        raise invalid
    if fingerprint != query.fingerprint():
        raise err(
            "InvalidNextTokenException", "NextToken was issued for a request with different parameters."
        )
    return Position(event_time_ms=time_ms, seq=seq)
