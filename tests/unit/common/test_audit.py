from __future__ import annotations

from datetime import datetime, timezone

from strongroom.common.v1 import caller_pb2

from common.audit import build_event, redact_parameters, user_identity

ACCT = "111122223333"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _user() -> caller_pb2.Caller:
    return caller_pb2.Caller(
        principal_type="IAMUser", account_id=ACCT, principal_arn=f"arn:aws:iam::{ACCT}:user/lab",
        principal_id="AIDAEXAMPLE", user_name="lab", access_key_id="AKIAEXAMPLE",
        source_ip="127.0.0.1", user_agent="aws-cli/1", request_id="req-1")


def test_record_has_cloudtrail_shape() -> None:
    when = datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone.utc)
    e = build_event(caller=_user(), event_source="kms.amazonaws.com", event_name="Encrypt",
                    region="us-east-1", recipient_account_id=ACCT,
                    request_parameters=redact_parameters({"KeyId": "alias/x", "Plaintext": b"secret"}),
                    resources=[{"accountId": ACCT, "type": "AWS::KMS::Key", "ARN": KEY_ARN}],
                    read_only=False, event_time=when)
    assert e["eventTime"] == "2026-12-01T12:00:00Z"
    assert e["userIdentity"] == {"type": "IAMUser", "principalId": "AIDAEXAMPLE",
                                 "arn": f"arn:aws:iam::{ACCT}:user/lab", "accountId": ACCT,
                                 "accessKeyId": "AKIAEXAMPLE", "userName": "lab"}
    assert e["requestParameters"] == {"keyId": "alias/x"}
    assert e["requestID"] == "req-1"
    assert e["eventCategory"] == "Management" and e["managementEvent"] is True
    assert e["resources"][0]["ARN"] == KEY_ARN
    assert "errorCode" not in e and "sharedEventID" not in e


def test_call_made_for_another_service_has_its_own_request_id() -> None:
    caller = _user()
    caller.invoked_by = "s3.amazonaws.com"
    caller.shared_event_id = "shared-1"
    e = build_event(caller=caller, event_source="kms.amazonaws.com", event_name="GenerateDataKey",
                    region="us-east-1", recipient_account_id=ACCT, request_parameters={},
                    read_only=True)
    assert e["requestID"] != "req-1"
    assert e["sharedEventID"] == "shared-1"
    assert e["sourceIPAddress"] == e["userAgent"] == "s3.amazonaws.com"
    assert e["userIdentity"]["invokedBy"] == "s3.amazonaws.com"


def test_identities() -> None:
    assert user_identity(caller_pb2.Caller(principal_type="AWSService",
                                           service_principal="cloudtrail.amazonaws.com")) == {
        "type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"}
    assert user_identity(caller_pb2.Caller())["accountId"] == "ANONYMOUS_PRINCIPAL"


def test_failures_carry_error_code_and_message() -> None:
    e = build_event(caller=_user(), event_source="kms.amazonaws.com", event_name="Decrypt",
                    region="us-east-1", recipient_account_id=ACCT, request_parameters=None,
                    read_only=True, error_code="AccessDenied", error_message="denied")
    assert (e["errorCode"], e["errorMessage"]) == ("AccessDenied", "denied")
    assert e["requestParameters"] is None


def test_s3_request_ids_look_like_s3s() -> None:
    import re

    from common.audit import new_s3_request_id

    ids = {new_s3_request_id() for _ in range(20_000)}
    assert len(ids) == 20_000
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{16}", i) for i in ids)  # Crockford base32
    assert set("".join(ids)) == set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def test_request_ids_are_random_v4_uuids() -> None:
    import uuid

    from common.audit import new_request_id

    ids = {new_request_id() for _ in range(20_000)}
    assert len(ids) == 20_000
    variants = set()
    for text in ids:
        u = uuid.UUID(text)
        assert str(u) == text and u.version == 4 and u.variant == uuid.RFC_4122
        variants.add(text[19])
    assert variants == set("89ab")


def test_event_ids_are_time_ordered_v7_uuids() -> None:
    import time
    import uuid

    from common.audit import new_event_id

    before = time.time_ns() // 1_000_000
    ids = [new_event_id() for _ in range(20_000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == 20_000
    variants = set()
    for text in ids:
        u = uuid.UUID(text)
        assert str(u) == text and u.version == 7 and u.variant == uuid.RFC_4122
        assert before <= u.int >> 80 <= after  # the first 48 bits are Unix milliseconds
        variants.add(text[19])
    assert variants == set("89ab")
    # Generated later -> sorts later (to the millisecond), so the trail's index appends.
    millis = [uuid.UUID(t).int >> 80 for t in ids]
    assert millis == sorted(millis)
    e = build_event(caller=caller_pb2.Caller(principal_type="Root", account_id=ACCT),
                    event_source="kms.amazonaws.com", event_name="ListKeys", region="us-east-1",
                    recipient_account_id=ACCT, request_parameters=None, read_only=True)
    assert uuid.UUID(e["eventID"]).version == 7 and uuid.UUID(e["requestID"]).version == 4
    assert e["eventID"] != e["requestID"]


def test_event_time_text_matches_strftime_across_seconds() -> None:
    from datetime import timedelta

    from common.audit import iso_time

    base = datetime(2026, 12, 31, 23, 59, 58, 999_999, tzinfo=timezone.utc)
    for delta_us in (0, 1, 1_000_000, 1_000_001, 2_500_000, 0):
        when = base + timedelta(microseconds=delta_us)
        assert iso_time(when) == when.strftime("%Y-%m-%dT%H:%M:%SZ")
    east = datetime(2026, 1, 1, 5, 0, 0, tzinfo=timezone(timedelta(hours=5)))
    assert iso_time(east) == "2026-01-01T00:00:00Z"
    assert iso_time(datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=timezone.utc)) == "1969-12-31T23:59:59Z"
