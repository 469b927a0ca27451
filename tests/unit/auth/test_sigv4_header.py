"""SigV4 Authorization-header verification against botocore-signed requests."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.utils import percent_encode
from multidict import CIMultiDict

from gateway.auth import (
    AuthError,
    HttpRequestView,
    PayloadMode,
    SigningCredential,
    parse_query,
    verify_payload_hash,
)
from gateway.auth.canonical import signing_key

from .helpers import (
    AKID,
    DOC_AKID,
    DOC_TIME,
    SECRET,
    SIGNED_AT,
    TEMP_AKID,
    TOKEN,
    Lookup,
    body_of,
    creds,
    default_lookup,
    fails,
    replace_view,
    run,
    sign,
    to_view,
    with_headers,
)

S3_ENDPOINT = "https://s3.strongroom.test"
KMS_ENDPOINT = "https://kms.us-east-1.strongroom.test"
EMPTY = hashlib.sha256(b"").hexdigest()


class RecordingS3Auth(S3SigV4Auth):  # type: ignore[misc]  # botocore is untyped
    """botocore's S3 signer, remembering the canonical request it signed."""

    recorded: str = ""

    def canonical_request(self, request: AWSRequest) -> str:
        self.recorded = super().canonical_request(request)
        return self.recorded


class RecordingSigV4Auth(SigV4Auth):  # type: ignore[misc]  # botocore is untyped
    recorded: str = ""

    def canonical_request(self, request: AWSRequest) -> str:
        self.recorded = super().canonical_request(request)
        return self.recorded


def s3_request(
    method: str = "GET",
    path: str = "/bucket/key",
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    temporary: bool = False,
    unsigned_payload: bool = False,
    at: Any = SIGNED_AT,
) -> tuple[AWSRequest, RecordingS3Auth]:
    request = AWSRequest(method, S3_ENDPOINT + path, headers=headers or {}, data=body,
                         params=params or {})
    if unsigned_payload:
        request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    signer = RecordingS3Auth(creds(temporary), "s3", "us-east-1")
    sign(signer, request, at)
    return request, signer


def kms_request(
    payload: dict[str, Any] | None = None, *, temporary: bool = False, path: str = "/",
    params: dict[str, str] | None = None,
) -> tuple[AWSRequest, RecordingSigV4Auth, bytes]:
    body = json.dumps(payload or {"KeyId": "alias/app", "Plaintext": "aGVsbG8="}).encode()
    request = AWSRequest(
        "POST",
        KMS_ENDPOINT + path,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "TrentService.Encrypt",
        },
        data=body,
        params=params or {},
    )
    signer = RecordingSigV4Auth(creds(temporary), "kms", "us-east-1")
    sign(signer, request)
    return request, signer, body


# --------------------------------------------------------------------------
# The examples of the AWS documentation
# (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html)


def _doc_view(method: str, target: str, headers: dict[str, str], signed: str,
              signature: str) -> HttpRequestView:
    path, _, query = target.partition("?")
    all_headers = CIMultiDict(headers)
    all_headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={DOC_AKID}/20130524/us-east-1/s3/aws4_request,"
        f"SignedHeaders={signed},Signature={signature}"
    )
    return HttpRequestView(method, path, parse_query(query), all_headers,
                           all_headers["host"], True)


DOC_EXAMPLES = {
    "GET Object": (
        "GET", "/test.txt",
        {"Host": "examplebucket.s3.amazonaws.com", "Range": "bytes=0-9",
         "x-amz-content-sha256": EMPTY, "x-amz-date": "20130524T000000Z"},
        "host;range;x-amz-content-sha256;x-amz-date",
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    ),
    "PUT Object": (
        "PUT", "/test%24file.text",
        {"Host": "examplebucket.s3.amazonaws.com", "Date": "Fri, 24 May 2013 00:00:00 GMT",
         "x-amz-content-sha256":
             "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
         "x-amz-date": "20130524T000000Z", "x-amz-storage-class": "REDUCED_REDUNDANCY"},
        "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
    ),
    "GET Bucket Lifecycle": (
        "GET", "/?lifecycle",
        {"Host": "examplebucket.s3.amazonaws.com", "x-amz-content-sha256": EMPTY,
         "x-amz-date": "20130524T000000Z"},
        "host;x-amz-content-sha256;x-amz-date",
        "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
    ),
    "GET Bucket (List Objects)": (
        "GET", "/?max-keys=2&prefix=J",
        {"Host": "examplebucket.s3.amazonaws.com", "x-amz-content-sha256": EMPTY,
         "x-amz-date": "20130524T000000Z"},
        "host;x-amz-content-sha256;x-amz-date",
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
    ),
}


@pytest.mark.parametrize("name", DOC_EXAMPLES)
def test_aws_documented_examples_are_accepted(name: str) -> None:
    view = _doc_view(*DOC_EXAMPLES[name])
    result = run(view, now=DOC_TIME)
    assert result.credential is not None and result.access_key_id == DOC_AKID
    assert (result.signature_version, result.auth_method) == ("SigV4", "AuthHeader")
    assert (result.region, result.service) == ("us-east-1", "s3")


def test_documented_put_body_is_checked_against_its_hash() -> None:
    result = run(_doc_view(*DOC_EXAMPLES["PUT Object"]), now=DOC_TIME)
    assert result.payload.mode is PayloadMode.SHA256
    verify_payload_hash(result, b"Welcome to Amazon S3.")
    with pytest.raises(AuthError) as caught:
        verify_payload_hash(result, b"Welcome to Amazon S4.")
    assert (caught.value.code, caught.value.http_status) == ("XAmzContentSHA256Mismatch", 400)
    assert caught.value.details["ClientComputedContentSHA256"].startswith("44ce7dd6")


def test_raw_dollar_in_path_is_canonicalised_like_the_documentation() -> None:
    # A client that sends "$" unescaped signed "/test%24file.text" all the same.
    view = _doc_view(*DOC_EXAMPLES["PUT Object"])
    run(replace_view(view, raw_path="/test$file.text"), now=DOC_TIME)


# --------------------------------------------------------------------------
# botocore-signed S3 requests

S3_CASES: dict[str, tuple[str, str, dict[str, str], dict[str, str], bytes]] = {
    "get object": ("GET", "/bucket/key", {}, {}, b""),
    "list with query": (
        "GET", "/bucket", {"list-type": "2", "prefix": "a/b c", "delimiter": "/",
                           "encoding-type": "url"}, {}, b"",
    ),
    "odd key characters": (
        "PUT",
        "/bucket/" + percent_encode("dir/a key+with$odd=chars~&é€😀", safe="/~"),
        {}, {"Content-Type": "text/plain"}, b"data",
    ),
    "encoded slash inside a segment": ("GET", "/bucket/a%2Fb/c", {}, {}, b""),
    "no path normalisation": ("GET", "/bucket//double/./dot/../x/", {}, {}, b""),
    "sub-resources": ("POST", "/bucket/k", {"uploads": ""}, {}, b""),
    "repeated spaces in header values": (
        "DELETE", "/bucket/k", {"versionId": "null"},
        {"x-amz-meta-a": "x   y \t z", "x-amz-meta-pad": "  padded  "}, b"",
    ),
    "bucket root": ("GET", "/bucket/", {"acl": ""}, {}, b""),
}


@pytest.mark.parametrize("name", S3_CASES)
def test_botocore_signed_s3_requests_are_accepted(name: str) -> None:
    method, path, params, headers, body = S3_CASES[name]
    request, _ = s3_request(method, path, params, headers, body)
    result = run(to_view(request, is_s3=True))
    assert not result.anonymous
    assert result.credential is not None and result.credential.principal == "user/alice"
    assert result.payload.mode is PayloadMode.SHA256
    verify_payload_hash(result, body)


def test_unsigned_payload_is_reported() -> None:
    request, _ = s3_request("PUT", "/bucket/k", body=b"anything", unsigned_payload=True)
    assert request.headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    result = run(to_view(request, is_s3=True))
    assert result.payload.mode is PayloadMode.UNSIGNED
    verify_payload_hash(result, b"whatever the body is")


def test_repeated_header_values_are_joined_with_commas() -> None:
    request = AWSRequest("PUT", S3_ENDPOINT + "/bucket/k", data=b"")
    request.headers["X-Amz-Meta-Reviewed-By"] = "joe"
    request.headers["X-Amz-Meta-Reviewed-By"] = "jane"  # HTTPHeaders appends
    sign(S3SigV4Auth(creds(), "s3", "us-east-1"), request)
    view = to_view(request, is_s3=True)
    assert view.headers.getall("x-amz-meta-reviewed-by") == ["joe", "jane"]  # type: ignore[attr-defined]
    run(view)


def test_plain_lowercase_dict_headers_work_too() -> None:
    request, _ = s3_request("GET", "/bucket/key")
    view = to_view(request, is_s3=True)
    plain = {name.lower(): value for name, value in view.headers.items()}
    run(replace_view(view, headers=plain))


def test_date_header_instead_of_x_amz_date() -> None:
    request = AWSRequest("GET", S3_ENDPOINT + "/bucket/key", headers={"Date": "placeholder"})
    sign(S3SigV4Auth(creds(), "s3", "us-east-1"), request)
    assert "X-Amz-Date" not in request.headers  # botocore signs with Date only
    run(to_view(request, is_s3=True))


def test_signing_key_is_cached() -> None:
    request, _ = s3_request()
    view = to_view(request, is_s3=True)
    run(view)
    before = signing_key.cache_info().hits
    run(view)
    assert signing_key.cache_info().hits == before + 1


# --------------------------------------------------------------------------
# JSON services (KMS)


def test_botocore_signed_kms_request_is_accepted_with_the_body_hash() -> None:
    request, _, body = kms_request()
    calls: list[int] = []

    def body_sha256() -> str:
        calls.append(1)
        return hashlib.sha256(body).hexdigest()

    result = run(to_view(request, is_s3=False), service="kms", body_sha256=body_sha256)
    assert calls == [1]
    assert (result.service, result.payload.mode) == ("kms", PayloadMode.VERIFIED)
    verify_payload_hash(result, body)  # nothing left to check


def test_tampered_kms_body_fails_with_the_json_flavour() -> None:
    request, signer, body = kms_request()
    tampered = body.replace(b"alias/app", b"alias/evil")
    error = fails(to_view(request, is_s3=False), body=tampered)
    assert (error.code, error.http_status) == ("InvalidSignatureException", 400)
    assert error.message.startswith("The request signature we calculated does not match")
    # What botocore signed differs from what arrived only in the payload hash line.
    assert error.details["CanonicalRequest"].rsplit("\n", 1)[0] == signer.recorded.rsplit(
        "\n", 1
    )[0]


def test_non_s3_paths_are_normalised_and_double_encoded_like_botocore() -> None:
    request, signer, body = kms_request(
        path="/2015-03-31/functions/my%20fn/./x/../invocations", params={"Qualifier": "PROD"}
    )
    view = to_view(request, is_s3=False)
    run(view, body=body)
    assert "/2015-03-31/functions/my%2520fn/invocations" in signer.recorded


def test_non_s3_request_without_body_hash_is_a_programming_error() -> None:
    request, _, _ = kms_request()
    with pytest.raises(ValueError):
        run(to_view(request, is_s3=False), body_sha256=None)


def test_unknown_scope_service_is_rejected_when_the_service_is_given() -> None:
    request, _, body = kms_request()
    error = fails(to_view(request, is_s3=False), body=body, service="cloudtrail")
    assert (error.code, error.http_status) == ("InvalidSignatureException", 400)
    assert "correct service: 'cloudtrail'" in error.message


# --------------------------------------------------------------------------
# rejections


@pytest.mark.parametrize("is_s3", [True, False])
def test_wrong_secret_is_signature_does_not_match(is_s3: bool) -> None:
    if is_s3:
        request, signer = s3_request("PUT", "/bucket/k", {"tagging": ""}, {"x-amz-meta-k": "v"})
        body = b""
    else:
        request, signer, body = kms_request()
    lookup = Lookup(SigningCredential(AKID, "not-the-secret"))
    error = fails(to_view(request, is_s3=is_s3), lookup=lookup, body=body)
    if is_s3:
        assert (error.code, error.http_status) == ("SignatureDoesNotMatch", 403)
        assert error.message == (
            "The request signature we calculated does not match the signature you provided. "
            "Check your key and signing method."
        )
        assert error.details["AWSAccessKeyId"] == AKID
        assert error.details["SignatureProvided"] == request.headers["Authorization"][-64:]
        assert error.details["StringToSign"].startswith("AWS4-HMAC-SHA256\n20240501T120000Z\n")
        assert error.details["StringToSignBytes"].startswith("41 57 53 34")
    else:
        assert (error.code, error.http_status) == ("InvalidSignatureException", 400)
    # Our canonical request is byte for byte the one botocore signed.
    assert error.details["CanonicalRequest"] == signer.recorded


TAMPERINGS = {
    "method": lambda v: replace_view(v, method="DELETE"),
    "path": lambda v: replace_view(v, raw_path="/bucket/other"),
    "extra query parameter": lambda v: replace_view(v, query=[*v.query, ("versionId", "1")]),
    "query value": lambda v: replace_view(v, query=[("prefix", "b")]),
    "signed header value": lambda v: with_headers(v, x_amz_meta_k="w"),
    "host": lambda v: with_headers(v, host="evil.example"),
    "payload hash": lambda v: with_headers(v, x_amz_content_sha256="UNSIGNED-PAYLOAD"),
    "signature": lambda v: with_headers(
        v, authorization=v.headers["authorization"][:-1] + "0"
        if not v.headers["authorization"].endswith("0") else v.headers["authorization"][:-1] + "1",
    ),
    "x-amz-date by one second": lambda v: with_headers(v, x_amz_date="20240501T120001Z"),
}


@pytest.mark.parametrize("name", TAMPERINGS)
def test_tampered_requests_are_rejected(name: str) -> None:
    request, _ = s3_request("GET", "/bucket/key", {"prefix": "a"}, {"x-amz-meta-k": "v"})
    view = to_view(request, is_s3=True)
    run(view)
    error = fails(TAMPERINGS[name](view))
    assert (error.code, error.http_status) == ("SignatureDoesNotMatch", 403)


def test_unsigned_extra_header_does_not_matter_for_header_auth() -> None:
    request, _ = s3_request()
    run(to_view(request, is_s3=True, extra_headers={"User-Agent": "curl", "X-Forwarded-For": "1"}))


@pytest.mark.parametrize("minutes", [20, -20])
def test_request_dated_twenty_minutes_away_is_too_skewed(minutes: int) -> None:
    request, _ = s3_request()
    now = SIGNED_AT + timedelta(minutes=minutes)
    error = fails(to_view(request, is_s3=True), now=now)
    assert (error.code, error.http_status) == ("RequestTimeTooSkewed", 403)
    assert error.message == (
        "The difference between the request time and the current time is too large."
    )
    assert error.details == {
        "RequestTime": "20240501T120000Z",
        "ServerTime": (now.strftime("%Y-%m-%dT%H:%M:%SZ")),
        "MaxAllowedSkewMilliseconds": "900000",
    }


def test_fifteen_minutes_of_skew_is_still_fine() -> None:
    request, _ = s3_request()
    view = to_view(request, is_s3=True)
    run(view, now=SIGNED_AT + timedelta(minutes=15))
    run(view, now=SIGNED_AT - timedelta(minutes=15))
    assert fails(view, now=SIGNED_AT + timedelta(minutes=15, seconds=1)).code == (
        "RequestTimeTooSkewed"
    )


def test_json_services_report_skew_as_an_expired_signature() -> None:
    request, _, body = kms_request()
    view = to_view(request, is_s3=False)
    late = fails(view, body=body, now=SIGNED_AT + timedelta(minutes=20))
    assert (late.code, late.http_status) == ("InvalidSignatureException", 400)
    assert late.message == (
        "Signature expired: 20240501T120000Z is now earlier than 20240501T120500Z "
        "(20240501T122000Z - 15 min.)"
    )
    early = fails(view, body=body, now=SIGNED_AT - timedelta(minutes=20))
    assert early.message.startswith("Signature not yet current: 20240501T120000Z is still later")


@pytest.mark.parametrize(
    "is_s3, code, status",
    [(True, "InvalidAccessKeyId", 403), (False, "UnrecognizedClientException", 400)],
)
def test_unknown_access_key(is_s3: bool, code: str, status: int) -> None:
    request = s3_request()[0] if is_s3 else kms_request()[0]
    error = fails(to_view(request, is_s3=is_s3), lookup=Lookup())
    assert (error.code, error.http_status) == (code, status)
    if is_s3:
        assert error.message == "The AWS Access Key Id you provided does not exist in our records."
        assert error.details == {"AWSAccessKeyId": AKID}
    else:
        assert error.message == "The security token included in the request is invalid."


# --------------------------------------------------------------------------
# session tokens


@pytest.mark.parametrize("is_s3", [True, False])
def test_temporary_credentials_with_their_token_are_accepted(is_s3: bool) -> None:
    request = s3_request(temporary=True)[0] if is_s3 else kms_request(temporary=True)[0]
    assert request.headers["X-Amz-Security-Token"] == TOKEN
    result = run(to_view(request, is_s3=is_s3), body=body_of(request))
    assert result.access_key_id == TEMP_AKID and result.principal == "role/session"


@pytest.mark.parametrize(
    "is_s3, code, status",
    [(True, "InvalidToken", 400), (False, "UnrecognizedClientException", 400)],
)
def test_wrong_session_token(is_s3: bool, code: str, status: int) -> None:
    request = s3_request(temporary=True)[0] if is_s3 else kms_request(temporary=True)[0]
    view = with_headers(to_view(request, is_s3=is_s3), x_amz_security_token=TOKEN + "x")
    error = fails(view)
    assert (error.code, error.http_status) == (code, status)
    if not is_s3:
        assert error.message == "The security token included in the request is invalid."


@pytest.mark.parametrize(
    "is_s3, code, status",
    [(True, "InvalidAccessKeyId", 403), (False, "UnrecognizedClientException", 400)],
)
def test_missing_session_token(is_s3: bool, code: str, status: int) -> None:
    request = s3_request(temporary=True)[0] if is_s3 else kms_request(temporary=True)[0]
    view = with_headers(to_view(request, is_s3=is_s3), x_amz_security_token=None)
    error = fails(view)
    assert (error.code, error.http_status) == (code, status)


def test_token_sent_with_long_term_credentials_is_invalid() -> None:
    request, _ = s3_request()
    view = with_headers(to_view(request, is_s3=True), x_amz_security_token=TOKEN)
    assert fails(view).code == "InvalidToken"


@pytest.mark.parametrize(
    "is_s3, code, message",
    [
        (True, "ExpiredToken", "The provided token has expired."),
        (False, "ExpiredTokenException", "The security token included in the request is expired"),
    ],
)
def test_expired_temporary_credentials(is_s3: bool, code: str, message: str) -> None:
    request = s3_request(temporary=True)[0] if is_s3 else kms_request(temporary=True)[0]
    lookup = default_lookup(expires_at=SIGNED_AT - timedelta(seconds=1))
    error = fails(to_view(request, is_s3=is_s3), lookup=lookup)
    assert (error.code, error.http_status, error.message) == (code, 400, message)


# --------------------------------------------------------------------------
# malformed requests


def _s3_view() -> HttpRequestView:
    return to_view(s3_request()[0], is_s3=True)


def _kms_view() -> HttpRequestView:
    return to_view(kms_request()[0], is_s3=False)


def _auth(view: HttpRequestView) -> str:
    return str(view.headers["authorization"])


def test_missing_signature_component() -> None:
    s3 = _s3_view()
    broken = _auth(s3).rsplit(", Signature=", 1)[0]
    error = fails(with_headers(s3, authorization=broken))
    assert (error.code, error.http_status) == ("AuthorizationHeaderMalformed", 400)
    assert error.message == (
        "The authorization header is malformed; the authorization header requires three "
        "components: Credential, SignedHeaders, and Signature."
    )
    kms = _kms_view()
    broken = _auth(kms).rsplit(", Signature=", 1)[0]
    error = fails(with_headers(kms, authorization=broken))
    assert (error.code, error.http_status) == ("IncompleteSignatureException", 400)
    assert error.message == (
        f"Authorization header requires 'Signature' parameter. Authorization={broken}"
    )


def test_component_without_equal_sign() -> None:
    kms = _kms_view()
    broken = _auth(kms).replace("Credential=", "Credential ")
    error = fails(with_headers(kms, authorization=broken))
    assert error.code == "IncompleteSignatureException"
    assert "not a valid key=value pair (missing equal-sign) in Authorization header" in (
        error.message
    )


@pytest.mark.parametrize(
    "credential, s3_fragment, json_code",
    [
        (f"{AKID}/20240501/us-east-1/s3", "the Credential is mal-formed",
         "IncompleteSignatureException"),
        (f"{AKID}/20240501/us-east-1/s3/aws5_request", "the Credential is mal-formed",
         "IncompleteSignatureException"),
        (f"{AKID}/20240501/eu-west-1/s3/aws4_request",
         "the region 'eu-west-1' is wrong; expecting 'us-east-1'", "InvalidSignatureException"),
        (f"{AKID}/20240502/us-east-1/s3/aws4_request",
         "Invalid credential date. Date is not the same as X-Amz-Date.",
         "InvalidSignatureException"),
    ],
)
def test_bad_credential_scopes(credential: str, s3_fragment: str, json_code: str) -> None:
    s3 = _s3_view()
    original = _auth(s3).split("Credential=", 1)[1].split(",", 1)[0]
    error = fails(with_headers(s3, authorization=_auth(s3).replace(original, credential)))
    assert (error.code, error.http_status) == ("AuthorizationHeaderMalformed", 400)
    assert s3_fragment in error.message
    kms = _kms_view()
    original = _auth(kms).split("Credential=", 1)[1].split(",", 1)[0]
    error = fails(with_headers(kms, authorization=_auth(kms).replace(
        original, credential.replace("/s3/", "/kms/"))))
    assert (error.code, error.http_status) == (json_code, 400)


def test_wrong_region_details() -> None:
    s3 = _s3_view()
    error = fails(s3, region="eu-west-1")
    assert error.details == {"Region": "eu-west-1"}
    kms = _kms_view()
    error = fails(kms, region="eu-west-1")
    assert error.message == "Credential should be scoped to a valid region, not 'us-east-1'. "


def test_s3_scope_must_name_s3() -> None:
    request = AWSRequest("GET", S3_ENDPOINT + "/bucket/k")
    sign(S3SigV4Auth(creds(), "kms", "us-east-1"), request)
    error = fails(to_view(request, is_s3=True))
    assert error.code == "AuthorizationHeaderMalformed"
    assert 'incorrect service "kms". This endpoint belongs to "s3".' in error.message


def test_host_must_be_signed() -> None:
    s3 = _s3_view()
    auth = _auth(s3).replace("SignedHeaders=host;", "SignedHeaders=")
    assert fails(with_headers(s3, authorization=auth)).code == "AuthorizationHeaderMalformed"
    kms = _kms_view()
    names = _auth(kms).split("SignedHeaders=", 1)[1].split(",", 1)[0]
    auth = _auth(kms).replace(names, names.replace("host;", ""))
    error = fails(with_headers(kms, authorization=auth))
    assert error.message == (
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
    )


def test_missing_and_invalid_dates() -> None:
    s3 = _s3_view()
    error = fails(with_headers(s3, x_amz_date=None))
    assert (error.code, error.http_status, error.message) == (
        "AccessDenied", 403, "AWS authentication requires a valid Date or x-amz-date header"
    )
    assert fails(with_headers(s3, x_amz_date="2024-05-01T12:00:00Z")).code == "AccessDenied"
    kms = _kms_view()
    error = fails(with_headers(kms, x_amz_date=None))
    assert error.code == "IncompleteSignatureException"
    assert "requires existence of either a 'X-Amz-Date' or a 'Date' header" in error.message
    error = fails(with_headers(kms, x_amz_date="yesterday"))
    assert error.message.startswith("Date must be in ISO-8601 'basic format'. Got 'yesterday'.")


def test_x_amz_content_sha256_is_required_and_validated_for_s3() -> None:
    s3 = _s3_view()
    error = fails(with_headers(s3, x_amz_content_sha256=None))
    assert (error.code, error.http_status, error.message) == (
        "InvalidRequest", 400, "Missing required header for this request: x-amz-content-sha256"
    )
    error = fails(with_headers(s3, x_amz_content_sha256="not-a-hash"))
    assert (error.code, error.http_status) == ("InvalidArgument", 400)
    assert error.details == {"ArgumentName": "x-amz-content-sha256",
                             "ArgumentValue": "not-a-hash"}


@pytest.mark.parametrize(
    "authorization, s3_code, json_code",
    [
        ("Bearer abc", "InvalidArgument", "IncompleteSignatureException"),
        ("AWS4-ECDSA-P256-SHA256 Credential=x", "InvalidArgument",
         "IncompleteSignatureException"),
        (f"AWS {AKID}:c2lnbmF0dXJl", None, "IncompleteSignatureException"),
    ],
)
def test_unsupported_authorization_schemes(authorization: str, s3_code: str | None,
                                           json_code: str) -> None:
    if s3_code is not None:
        error = fails(with_headers(_s3_view(), authorization=authorization))
        assert (error.code, error.message) == (s3_code, "Unsupported Authorization Type")
        assert error.details["ArgumentValue"] == authorization
    error = fails(with_headers(_kms_view(), authorization=authorization))
    assert (error.code, error.http_status) == (json_code, 400)
    assert error.message.startswith("Authorization header requires 'Credential' parameter.")


def test_header_and_query_credentials_together_are_rejected() -> None:
    s3 = _s3_view()
    view = replace_view(s3, query=[("X-Amz-Credential", "x")])
    error = fails(view)
    assert (error.code, error.http_status) == ("InvalidArgument", 400)
    assert error.message.startswith("Only one auth mechanism allowed")


def test_naive_now_is_taken_as_utc() -> None:
    run(_s3_view(), now=SIGNED_AT.replace(tzinfo=None))


def test_lookup_is_not_called_for_requests_rejected_early() -> None:
    lookup = default_lookup()
    fails(_s3_view(), lookup=lookup, now=SIGNED_AT + timedelta(hours=1))
    assert lookup.calls == []


def test_payload_hash_of_s3_request_is_used_verbatim_from_the_header() -> None:
    request, _ = s3_request("PUT", "/bucket/k", body=b"hello")
    result = run(to_view(request, is_s3=True))
    assert result.payload.sha256 == hashlib.sha256(b"hello").hexdigest()
    assert body_of(request) == b"hello"
    with pytest.raises(AuthError) as caught:
        verify_payload_hash(result, b"hellO")
    assert caught.value.details["S3ComputedContentSHA256"] == hashlib.sha256(b"hellO").hexdigest()


def test_key_is_cached_per_secret_date_region_service() -> None:
    signing_key.cache_clear()
    run(_s3_view())
    run(to_view(s3_request(at=SIGNED_AT + timedelta(days=1))[0], is_s3=True),
        now=SIGNED_AT + timedelta(days=1))
    assert signing_key.cache_info().currsize == 2
    assert SECRET  # the cache is keyed by the secret itself (rotation -> new entry)
