"""Pure trail domain: record indexing, LookupEvents validation and tokens, names, selectors,
file naming and the digest format (checked with the same library the AWS CLI validates with)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta, timezone

import pytest
import rsa  # what `aws cloudtrail validate-logs` verifies digest signatures with
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa as crsa
from strongroom.common.v1 import caller_pb2

from common.audit import build_event
from common.caller import root_caller, service_caller
from common.errors import AwsError
from services.trail.domain import digest as dg
from services.trail.domain import lookup as lk
from services.trail.domain import selectors as sel
from services.trail.domain.event import InvalidRecord, index_record, username_of
from services.trail.domain.logfile import (
    digest_file_key,
    gunzip_bytes,
    gzip_bytes,
    key_timestamp,
    log_file_body,
    log_file_key,
    unique_suffix,
)
from services.trail.domain.trails import parse_name_or_arn, validate_tags, validate_trail_name

ACCOUNT = "111122223333"
NOW_MS = int(datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc).timestamp() * 1000)


def code_of(exc_info: pytest.ExceptionInfo[AwsError]) -> str:
    return exc_info.value.code


# ------------------------------------------------------------------ records


def _record(**kw: object) -> dict:
    return build_event(
        caller=kw.pop("caller", root_caller(ACCOUNT, "us-east-1")),  # type: ignore[arg-type]
        event_source=str(kw.pop("source", "kms.amazonaws.com")),
        event_name=str(kw.pop("name", "Encrypt")),
        region="us-east-1",
        recipient_account_id=ACCOUNT,
        request_parameters={"keyId": "alias/x"},
        read_only=bool(kw.pop("read_only", False)),
        **kw,
    )  # type: ignore[arg-type]


def test_index_record_fields() -> None:
    rec = _record(
        resources=[
            {"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k1"},
            {"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::bkt"},
        ]
    )
    ev = index_record(json.dumps(rec), rec["eventID"])
    assert ev.event_id == rec["eventID"]
    assert ev.event_name == "Encrypt" and ev.event_source == "kms.amazonaws.com"
    assert ev.read_only is False and ev.username == "root" and ev.category == "Management"
    assert [(r.type, r.name) for r in ev.resources] == [
        ("AWS::KMS::Key", f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k1"),
        ("AWS::S3::Bucket", "bkt"),
    ]
    assert ev.body == json.dumps(rec)  # kept byte for byte


def test_usernames_as_event_history_shows_them() -> None:
    assert username_of({"type": "Root"}) == "root"
    assert (
        username_of({"type": "IAMUser", "userName": "alice", "arn": "arn:aws:iam::1:user/alice"}) == "alice"
    )
    assert (
        username_of({"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Admin/session-1"})
        == "session-1"
    )
    assert (
        username_of({"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"})
        == "cloudtrail.amazonaws.com"
    )
    assert username_of({"type": "AWSAccount", "accountId": "ANONYMOUS_PRINCIPAL"}) is None


def test_access_key_and_service_identity() -> None:
    caller = caller_pb2.Caller(
        principal_type="IAMUser",
        account_id=ACCOUNT,
        user_name="bob",
        principal_arn=f"arn:aws:iam::{ACCOUNT}:user/bob",
        principal_id="AIDAX",
        access_key_id="AKIAEXAMPLE",
    )
    ev = index_record(json.dumps(_record(caller=caller)))
    assert ev.username == "bob" and ev.access_key_id == "AKIAEXAMPLE"
    svc = index_record(
        json.dumps(_record(caller=service_caller(ACCOUNT, "cloudtrail.amazonaws.com", "us-east-1")))
    )
    assert svc.username == "cloudtrail.amazonaws.com" and svc.access_key_id is None


@pytest.mark.parametrize(
    "body",
    [
        "{",
        "[]",
        json.dumps({"eventTime": "2026-01-01T00:00:00Z"}),
        json.dumps({"eventID": "x"}),
        json.dumps({"eventID": "x", "eventTime": "nope"}),
    ],
)
def test_unstorable_records_are_rejected(body: str) -> None:
    with pytest.raises(InvalidRecord):
        index_record(body)


def test_event_id_must_match() -> None:
    rec = _record()
    with pytest.raises(InvalidRecord):
        index_record(json.dumps(rec), "another-id")


def test_data_and_insight_categories() -> None:
    data = _record(management_event=False)
    assert index_record(json.dumps(data)).category == "Data"
    insight = dict(_record(), eventType="AwsCloudTrailInsight", eventCategory="Insight")
    assert index_record(json.dumps(insight)).category == "Insight"


# ------------------------------------------------------------------ LookupEvents validation


def _q(**kw: object) -> lk.LookupQuery:
    args: dict[str, object] = {
        "attributes": [],
        "start": None,
        "end": None,
        "event_category": "",
        "max_results": None,
        "now_ms": NOW_MS,
    }
    args.update(kw)
    return lk.build_query(**args)  # type: ignore[arg-type]


def test_lookup_defaults_are_90_days_and_50_results() -> None:
    q = _q()
    assert q.max_results == 50 and q.end_ms == NOW_MS and q.start_ms == NOW_MS - 90 * 86400_000
    old = datetime(2020, 1, 1, tzinfo=timezone.utc)
    assert _q(start=old).start_ms == NOW_MS - 90 * 86400_000  # never older than 90 days


@pytest.mark.parametrize(
    "kwargs,code",
    [
        ({"max_results": 0}, "InvalidMaxResultsException"),
        ({"max_results": 51}, "InvalidMaxResultsException"),
        ({"attributes": [("EventName", "A"), ("Bogus", "B")]}, "InvalidLookupAttributesException"),
        ({"attributes": [("Bogus", "x")]}, "InvalidLookupAttributesException"),
        ({"attributes": [("EventName", "")]}, "InvalidLookupAttributesException"),
        ({"attributes": [("EventName", "x" * 2001)]}, "InvalidLookupAttributesException"),
        ({"attributes": [("ReadOnly", "yes")]}, "InvalidLookupAttributesException"),
        (
            {"attributes": [("Username", "root")], "event_category": "insight"},
            "InvalidLookupAttributesException",
        ),
        ({"event_category": "management"}, "InvalidEventCategoryException"),
        (
            {
                "start": datetime(2026, 3, 1, 11, tzinfo=timezone.utc),
                "end": datetime(2026, 3, 1, 10, tzinfo=timezone.utc),
            },
            "InvalidTimeRangeException",
        ),
    ],
)
def test_lookup_validation_errors(kwargs: dict, code: str) -> None:
    with pytest.raises(AwsError) as exc:
        _q(**kwargs)
    assert code_of(exc) == code


@pytest.mark.parametrize("key", lk.LOOKUP_KEYS)
def test_every_lookup_key_is_accepted(key: str) -> None:
    value = "true" if key == "ReadOnly" else "v"
    assert _q(attributes=[(key, value)]).attribute_key == key


def test_only_the_first_lookup_attribute_counts() -> None:
    # The live service honours the first attribute and ignores the rest ("the list can
    # contain only one item"), as long as each one is valid.
    q = _q(attributes=[("EventName", "A"), ("Username", "root")])
    assert (q.attribute_key, q.attribute_value) == ("EventName", "A")


def test_next_token_round_trip_and_tamper() -> None:
    secret = b"s" * 32
    q = _q(attributes=[("EventName", "Encrypt")], max_results=5)
    token = lk.encode_token(secret, q, lk.Position(event_time_ms=123, seq=7))
    assert lk.decode_token(secret, q, token) == lk.Position(123, 7)
    with pytest.raises(AwsError) as exc:
        lk.decode_token(secret, _q(attributes=[("EventName", "Decrypt")], max_results=5), token)
    assert code_of(exc) == "InvalidNextTokenException"
    payload, mac = token.split(".")
    forged = lk._b64(json.dumps([1, 999, 1, q.fingerprint()]).encode()) + "." + mac
    for bad in (forged, "garbage", token + "x", ""):
        with pytest.raises(AwsError) as exc:
            lk.decode_token(secret, q, bad)
        assert code_of(exc) == "InvalidNextTokenException"


# ------------------------------------------------------------------ trails


@pytest.mark.parametrize(
    "name,fragment",
    [
        ("ab", "too short"),
        ("a" * 129, "too long"),
        ("-abc", "starts with"),
        ("abc-", "ends with"),
        ("ab c", "can only contain"),
        ("a--b", "adjacent"),
        ("a._b", "adjacent"),
        ("192.168.1.1", "IP address"),
    ],
)
def test_invalid_trail_names(name: str, fragment: str) -> None:
    with pytest.raises(AwsError) as exc:
        validate_trail_name(name)
    assert code_of(exc) == "InvalidTrailNameException" and fragment in exc.value.message


def test_valid_names_and_arns() -> None:
    for name in ("myTrail", "my-trail.1_x", "abc"):
        validate_trail_name(name)
    assert (
        parse_name_or_arn(
            f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/t1", account_id=ACCOUNT, region="us-east-1"
        )
        == "t1"
    )
    with pytest.raises(AwsError) as exc:
        parse_name_or_arn("arn:aws:s3:::bucket", account_id=ACCOUNT, region="us-east-1")
    assert code_of(exc) == "CloudTrailARNInvalidException"
    with pytest.raises(AwsError) as exc:
        parse_name_or_arn(
            f"arn:aws:cloudtrail:eu-west-1:{ACCOUNT}:trail/t1", account_id=ACCOUNT, region="us-east-1"
        )
    assert code_of(exc) == "InvalidHomeRegionException"


def test_tag_limits() -> None:
    validate_tags([("k", "v")])
    for tags, code in (
        ([("k", "v"), ("k", "w")], "InvalidTagParameterException"),
        ([("", "v")], "InvalidTagParameterException"),
        ([("aws:x", "v")], "InvalidTagParameterException"),
        ([(f"k{i}", "v") for i in range(51)], "TagsLimitExceededException"),
    ):
        with pytest.raises(AwsError) as exc:
            validate_tags(tags)
        assert code_of(exc) == code


# ------------------------------------------------------------------ file names


def test_log_file_key_matches_aws_layout() -> None:
    when = datetime(2026, 4, 5, 6, 7, 8, tzinfo=timezone.utc)
    key = log_file_key(prefix="", account_id=ACCOUNT, region="us-east-1", when=when, unique=unique_suffix())
    assert re.fullmatch(
        rf"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/04/05/"
        rf"{ACCOUNT}_CloudTrail_us-east-1_20260405T0607Z_[A-Za-z0-9]{{16}}\.json\.gz",
        key,
    )
    assert log_file_key(
        prefix="logs/x/", account_id=ACCOUNT, region="us-east-1", when=when, unique="u" * 16
    ).startswith("logs/x/AWSLogs/")
    dkey = digest_file_key(prefix="p", account_id=ACCOUNT, region="us-east-1", trail_name="t1", end=when)
    assert dkey == (
        f"p/AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2026/04/05/"
        f"{ACCOUNT}_CloudTrail-Digest_us-east-1_t1_us-east-1_20260405T060708Z.json.gz"
    )
    assert key_timestamp(dkey) == when
    assert key_timestamp(key) == when.replace(second=0)
    assert unique_suffix() != unique_suffix()


def test_log_file_body_is_records_array_and_gzip_is_deterministic() -> None:
    a, b = json.dumps(_record()), json.dumps(_record())
    body = log_file_body([a, b])
    assert json.loads(body) == {"Records": [json.loads(a), json.loads(b)]}
    assert gzip_bytes(body) == gzip_bytes(body) and gunzip_bytes(gzip_bytes(body)) == body


# ------------------------------------------------------------------ selectors

S3_OBJECT = {"accountId": ACCOUNT, "type": "AWS::S3::Object", "ARN": "arn:aws:s3:::bkt/photos/a.jpg"}


def _data_event(read_only: bool = False) -> dict:
    return _record(
        source="s3.amazonaws.com",
        name="PutObject",
        management_event=False,
        read_only=read_only,
        resources=[S3_OBJECT],
    )


def test_default_selectors_take_management_events_only() -> None:
    def matches(r: dict) -> bool:
        return sel.trail_matches(
            event_selectors=sel.DEFAULT_EVENT_SELECTORS,
            advanced_event_selectors=(),
            has_insight_selectors=False,
            record=r,
        )

    assert matches(_record())
    assert not matches(_data_event())


def test_basic_selectors_data_resources_and_read_write() -> None:
    selectors = sel.normalise_event_selectors(
        [
            {
                "ReadWriteType": "WriteOnly",
                "IncludeManagementEvents": False,
                "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3:::bkt/photos/"]}],
            }
        ]
    )
    assert selectors[0]["ExcludeManagementEventSources"] == []
    assert sel.basic_matches(selectors, _data_event())
    assert not sel.basic_matches(selectors, _data_event(read_only=True))
    assert not sel.basic_matches(selectors, _record())  # management off
    other = dict(_data_event(), resources=[dict(S3_OBJECT, ARN="arn:aws:s3:::other/x")])
    assert not sel.basic_matches(selectors, other)
    everything = sel.normalise_event_selectors(
        [{"DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]}]
    )
    assert sel.basic_matches(everything, other) and sel.basic_matches(everything, _record())


def test_exclude_kms_events() -> None:
    selectors = sel.normalise_event_selectors([{"ExcludeManagementEventSources": ["kms.amazonaws.com"]}])
    assert not sel.basic_matches(selectors, _record())
    assert sel.basic_matches(selectors, _record(source="s3.amazonaws.com", name="CreateBucket"))


@pytest.mark.parametrize(
    "selectors",
    [
        [{}] * 6,
        [{"ReadWriteType": "Sometimes"}],
        [{"DataResources": [{"Type": "AWS::Nope::Thing", "Values": ["arn:aws:s3"]}]}],
        [{"DataResources": [{"Type": "AWS::S3::Object", "Values": ["bucket"]}]}],
        [{"ExcludeManagementEventSources": ["s3.amazonaws.com"]}],
    ],
)
def test_invalid_basic_selectors(selectors: list) -> None:
    with pytest.raises(AwsError) as exc:
        sel.normalise_event_selectors(selectors)
    assert code_of(exc) == "InvalidEventSelectorsException"


def test_advanced_selectors() -> None:
    adv = sel.normalise_advanced_selectors(
        [
            {
                "Name": "writes to photos",
                "FieldSelectors": [
                    {"Field": "eventCategory", "Equals": ["Data"]},
                    {"Field": "resources.type", "Equals": ["AWS::S3::Object"]},
                    {"Field": "resources.ARN", "StartsWith": ["arn:aws:s3:::bkt/photos/"]},
                    {"Field": "readOnly", "Equals": ["false"]},
                ],
            },
            {
                "FieldSelectors": [
                    {"Field": "eventCategory", "Equals": ["Management"]},
                    {"Field": "eventSource", "NotEquals": ["kms.amazonaws.com"]},
                ]
            },
        ]
    )
    assert sel.advanced_matches(adv, _data_event())
    assert not sel.advanced_matches(adv, _data_event(read_only=True))
    assert not sel.advanced_matches(adv, _record())  # kms excluded
    assert sel.advanced_matches(adv, _record(source="s3.amazonaws.com", name="CreateBucket"))
    for bad in (
        [{"FieldSelectors": []}],
        [{"FieldSelectors": [{"Field": "eventName", "Equals": ["x"]}]}],  # no eventCategory
        [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Other"]}]}],
        [
            {
                "FieldSelectors": [
                    {"Field": "eventCategory", "Equals": ["Data"]},
                    {"Field": "nope", "Equals": ["x"]},
                ]
            }
        ],
    ):
        with pytest.raises(AwsError) as exc:
            sel.normalise_advanced_selectors(bad)
        assert code_of(exc) == "InvalidEventSelectorsException"


def test_insight_selectors() -> None:
    assert sel.normalise_insight_selectors([{"InsightType": "ApiCallRateInsight"}]) == (
        {"InsightType": "ApiCallRateInsight"},
    )
    for bad in ([{"InsightType": "Nope"}], [{"InsightType": "ApiCallRateInsight"}] * 2):
        with pytest.raises(AwsError) as exc:
            sel.normalise_insight_selectors(bad)
        assert code_of(exc) == "InvalidInsightSelectorsException"


# ------------------------------------------------------------------ digests


@pytest.fixture(scope="module")
def rsa_key() -> crsa.RSAPrivateKey:
    return crsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pkcs1(key: crsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)


def _signed_digest(
    key: crsa.RSAPrivateKey, *, previous: dg.PreviousDigest | None, end: str, dkey: str
) -> tuple[bytes, str]:
    logs = [
        dg.LogFileEntry(
            "bkt",
            "AWSLogs/x/CloudTrail/us-east-1/2026/01/01/f.json.gz",
            "ab" * 32,
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:01:00Z",
        )
    ]
    body = dg.build_digest(
        account_id=ACCOUNT,
        start="2026-01-01T00:00:00Z",
        end=end,
        bucket="bkt",
        key=dkey,
        key_fingerprint=dg.fingerprint(_pkcs1(key)),
        logs=logs,
        previous=previous,
    )
    msg = dg.string_to_sign(
        end=end,
        bucket="bkt",
        key=dkey,
        digest_body=body,
        previous_signature=previous.signature if previous else None,
    )
    return body, key.sign(msg, padding.PKCS1v15(), hashes.SHA256()).hex()


def test_digest_fields_and_first_digest_nulls(rsa_key: crsa.RSAPrivateKey) -> None:
    body, _sig = _signed_digest(rsa_key, previous=None, end="2026-01-01T01:00:00Z", dkey="d1.json.gz")
    doc = json.loads(body)
    assert list(doc)[:7] == [
        "awsAccountId",
        "digestStartTime",
        "digestEndTime",
        "digestS3Bucket",
        "digestS3Object",
        "digestPublicKeyFingerprint",
        "digestSignatureAlgorithm",
    ]
    assert doc["digestSignatureAlgorithm"] == "SHA256withRSA"
    assert doc["previousDigestSignature"] is None and doc["previousDigestS3Object"] is None
    assert doc["logFiles"][0]["hashAlgorithm"] == "SHA-256"
    assert (
        doc["oldestEventTime"] == "2026-01-01T00:00:00Z" and doc["newestEventTime"] == "2026-01-01T00:01:00Z"
    )
    assert dg.fingerprint(_pkcs1(rsa_key)) == hashlib.md5(_pkcs1(rsa_key)).hexdigest()  # noqa: S324
    assert dg.string_to_sign_of(doc, body).endswith(b"\nnull")


def test_digest_signature_verifies_like_the_aws_cli(rsa_key: crsa.RSAPrivateKey) -> None:
    body1, sig1 = _signed_digest(rsa_key, previous=None, end="2026-01-01T01:00:00Z", dkey="d1.json.gz")
    prev = dg.PreviousDigest("bkt", "d1.json.gz", dg.sha256_hex(body1), sig1)
    body2, sig2 = _signed_digest(rsa_key, previous=prev, end="2026-01-01T02:00:00Z", dkey="d2.json.gz")
    doc2 = json.loads(body2)
    assert doc2["previousDigestSignature"] == sig1 and doc2["previousDigestHashValue"] == dg.sha256_hex(body1)
    # our verifier
    assert dg.verify_signature(_pkcs1(rsa_key), dg.string_to_sign_of(doc2, body2), sig2)
    # the AWS CLI's verifier: python-rsa, PKCS#1 DER public key, same string to sign
    aws_key = rsa.PublicKey.load_pkcs1(_pkcs1(rsa_key), format="DER")
    to_sign = (
        f"{doc2['digestEndTime']}\n{doc2['digestS3Bucket']}/{doc2['digestS3Object']}\n"
        f"{hashlib.sha256(body2).hexdigest()}\n{doc2['previousDigestSignature']}"
    ).encode()
    assert rsa.verify(to_sign, bytes.fromhex(sig2), aws_key) == "SHA-256"
    # any change breaks it
    tampered = body2.replace(b'"hashValue":"ab', b'"hashValue":"cd')
    assert not dg.verify_signature(
        _pkcs1(rsa_key), dg.string_to_sign_of(json.loads(tampered), tampered), sig2
    )
    other = crsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert not dg.verify_signature(_pkcs1(other), dg.string_to_sign_of(doc2, body2), sig2)
    assert not dg.verify_signature(_pkcs1(rsa_key), dg.string_to_sign_of(doc2, body2), "zz")


def test_pkcs1_from_spki_round_trip(rsa_key: crsa.RSAPrivateKey) -> None:
    spki = rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert dg.pkcs1_from_spki(spki) == _pkcs1(rsa_key)
    assert dg.public_key_from_pkcs1(_pkcs1(rsa_key)).public_numbers() == rsa_key.public_key().public_numbers()


def test_event_time_window_parsing() -> None:
    from services.trail.domain.event import parse_event_time

    assert parse_event_time("2026-01-01T00:00:01Z") == int(
        datetime(2026, 1, 1, 0, 0, 1, tzinfo=timezone.utc).timestamp() * 1000
    )
    assert parse_event_time("2026-01-01T00:00:01.500+00:00") - parse_event_time("2026-01-01T00:00:01Z") == 500
    assert (datetime(2026, 1, 2, tzinfo=timezone.utc) - timedelta(days=1)).day == 1


# ------------------------------------------------------------------ insights


def test_insight_detector_start_and_end() -> None:
    from services.trail.domain.insights import CALL_RATE, ERROR_RATE, InsightDetector

    det = InsightDetector(
        account_id=ACCOUNT,
        region="us-east-1",
        bucket_seconds=10,
        baseline_buckets=6,
        min_history_buckets=3,
        factor=3,
        min_count=5,
    )
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def at(bucket: int, second: int = 1) -> int:
        return int((t0 + timedelta(seconds=bucket * 10 + second)).timestamp() * 1000)

    def rec(read_only: bool = False, error: str | None = None) -> dict:
        r = {
            "eventSource": "kms.amazonaws.com",
            "eventName": "CreateKey",
            "readOnly": read_only,
            "eventCategory": "Management",
            "managementEvent": True,
        }
        if error:
            r["errorCode"] = error
        return r

    for b in range(5):  # a quiet baseline: one write per bucket
        det.observe(rec(), at(b))
        det.observe(rec(read_only=True), at(b))
    assert det.evaluate(t0 + timedelta(seconds=50)) == []
    det.observe(rec(), at(5), 20)  # a burst of writes, and of errors
    det.observe(rec(error="AccessDenied"), at(5), 8)
    started = det.evaluate(t0 + timedelta(seconds=60))
    assert {r["insightDetails"]["insightType"] for r in started} == {CALL_RATE, ERROR_RATE}
    start = next(r for r in started if r["insightDetails"]["insightType"] == CALL_RATE)
    assert start["eventType"] == "AwsCloudTrailInsight" and start["eventCategory"] == "Insight"
    assert start["insightDetails"]["state"] == "Start"
    assert start["insightDetails"]["eventName"] == "CreateKey"
    assert (
        start["insightDetails"]["insightContext"]["statistics"]["insight"]["average"]
        > start["insightDetails"]["insightContext"]["statistics"]["baseline"]["average"]
    )
    det.observe(rec(), at(6))  # back to normal
    ended = det.evaluate(t0 + timedelta(seconds=70))
    end = next(r for r in ended if r["insightDetails"]["insightType"] == CALL_RATE)
    assert end["insightDetails"]["state"] == "End" and end["sharedEventID"] == start["sharedEventID"]
    assert "insightDuration" in end["insightDetails"]["insightContext"]["statistics"]
    ev = index_record(json.dumps(end))
    assert (
        ev.category == "Insight" and ev.event_name == "CreateKey" and ev.event_source == "kms.amazonaws.com"
    )


def test_insight_needs_history_and_selector_type() -> None:
    from services.trail.domain.insights import InsightDetector

    det = InsightDetector(
        account_id=ACCOUNT, region="us-east-1", bucket_seconds=10, min_history_buckets=3, min_count=5
    )
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    det.observe({"eventSource": "s", "eventName": "n", "readOnly": False}, int(t0.timestamp() * 1000), 100)
    assert det.evaluate(t0 + timedelta(seconds=20)) == []  # no baseline yet
    record = {
        "eventType": "AwsCloudTrailInsight",
        "eventCategory": "Insight",
        "insightDetails": {"insightType": "ApiErrorRateInsight"},
    }
    assert sel.trail_matches(
        event_selectors=(),
        advanced_event_selectors=(),
        has_insight_selectors=True,
        record=record,
        insight_types=["ApiErrorRateInsight"],
    )
    assert not sel.trail_matches(
        event_selectors=(),
        advanced_event_selectors=(),
        has_insight_selectors=True,
        record=record,
        insight_types=["ApiCallRateInsight"],
    )
    assert not sel.trail_matches(
        event_selectors=sel.DEFAULT_EVENT_SELECTORS,
        advanced_event_selectors=(),
        has_insight_selectors=False,
        record=record,
    )
