"""SigV4 presigned URLs (query-string authentication)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from botocore.auth import S3SigV4QueryAuth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from multidict import CIMultiDict

from gateway.auth import HttpRequestView, PayloadMode, parse_query

from .helpers import (
    DOC_TIME,
    SIGNED_AT,
    TEMP_AKID,
    TOKEN,
    creds,
    fails,
    replace_view,
    run,
    sign,
    to_view,
    with_headers,
)

S3_ENDPOINT = "https://s3.strongroom.test"

# https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
DOC_URL_QUERY = (
    "X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
)


def doc_view() -> HttpRequestView:
    headers = CIMultiDict({"Host": "examplebucket.s3.amazonaws.com"})
    return HttpRequestView("GET", "/test.txt", parse_query(DOC_URL_QUERY), headers,
                           "examplebucket.s3.amazonaws.com", True)


def test_documented_presigned_url_is_valid_for_its_lifetime() -> None:
    view = doc_view()
    result = run(view, now=DOC_TIME)
    assert (result.signature_version, result.auth_method) == ("SigV4", "QueryString")
    assert result.payload.mode is PayloadMode.UNSIGNED
    run(view, now=DOC_TIME + timedelta(seconds=86400))  # last valid second
    error = fails(view, now=DOC_TIME + timedelta(seconds=86401))
    assert (error.code, error.http_status, error.message) == (
        "AccessDenied", 403, "Request has expired"
    )
    assert error.details == {
        "X-Amz-Expires": "86400",
        "Expires": "2013-05-25T00:00:00Z",
        "ServerTime": "2013-05-25T00:00:01Z",
    }


def test_presigned_url_from_the_future_is_not_valid_yet() -> None:
    view = doc_view()
    run(view, now=DOC_TIME - timedelta(minutes=15))
    error = fails(view, now=DOC_TIME - timedelta(minutes=15, seconds=1))
    assert (error.code, error.message) == ("AccessDenied", "Request is not valid yet")


def presigned(
    path: str = "/bucket/key",
    params: dict[str, str] | None = None,
    *,
    expires: int = 3600,
    temporary: bool = False,
    headers: dict[str, str] | None = None,
    method: str = "GET",
) -> AWSRequest:
    request = AWSRequest(method, S3_ENDPOINT + path, params=params or {}, headers=headers or {})
    sign(S3SigV4QueryAuth(creds(temporary), "s3", "us-east-1", expires=expires), request)
    return request


def test_botocore_presigned_url_until_expiry_then_access_denied() -> None:
    request = presigned(params={"response-content-disposition": 'attachment; filename="a b.txt"',
                                "versionId": "3/L4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"})
    assert "X-Amz-Signature=" in request.url
    view = to_view(request, is_s3=True)
    result = run(view, now=SIGNED_AT + timedelta(seconds=3600))
    assert result.payload.mode is PayloadMode.UNSIGNED
    error = fails(view, now=SIGNED_AT + timedelta(seconds=3601))
    assert (error.code, error.http_status, error.message) == (
        "AccessDenied", 403, "Request has expired"
    )


def test_presigned_put_with_a_signed_content_type() -> None:
    request = presigned(method="PUT", headers={"Content-Type": "image/png"})
    assert "content-type" in request.url.lower()
    view = to_view(request, is_s3=True)
    run(view)
    assert fails(with_headers(view, content_type="text/html")).code == "SignatureDoesNotMatch"


def test_presigned_url_with_session_token() -> None:
    request = presigned(temporary=True)
    assert "X-Amz-Security-Token=" in request.url
    view = to_view(request, is_s3=True)
    assert run(view).access_key_id == TEMP_AKID
    query = [(k, v + "x" if k == "X-Amz-Security-Token" else v) for k, v in view.query]
    assert fails(replace_view(view, query=query)).code == "InvalidToken"
    query = [(k, v) for k, v in view.query if k != "X-Amz-Security-Token"]
    assert fails(replace_view(view, query=query)).code == "InvalidAccessKeyId"
    assert TOKEN


@pytest.mark.parametrize(
    "expires, message",
    [
        (604801, "X-Amz-Expires must be less than a week (in seconds) that is 604800"),
        (0, "X-Amz-Expires must be at least 1 second"),
        (-5, "X-Amz-Expires must be non-negative"),
    ],
)
def test_expires_must_be_between_one_second_and_a_week(expires: int, message: str) -> None:
    view = to_view(presigned(expires=expires), is_s3=True)
    error = fails(view)
    assert (error.code, error.http_status, error.message) == (
        "AuthorizationQueryParametersError", 400, message
    )


def test_a_week_is_the_longest_lifetime() -> None:
    view = to_view(presigned(expires=604800), is_s3=True)
    run(view, now=SIGNED_AT + timedelta(days=7))


def test_missing_presign_parameter() -> None:
    view = to_view(presigned(), is_s3=True)
    query = [(k, v) for k, v in view.query if k != "X-Amz-Date"]
    error = fails(replace_view(view, query=query))
    assert (error.code, error.http_status) == ("AuthorizationQueryParametersError", 400)
    assert error.message.startswith("Query-string authentication version 4 requires the")


def test_bad_algorithm_and_date() -> None:
    view = to_view(presigned(), is_s3=True)
    query = [(k, "AWS4-HMAC-SHA1" if k == "X-Amz-Algorithm" else v) for k, v in view.query]
    assert fails(replace_view(view, query=query)).message == (
        'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"'
    )
    query = [(k, "2024-05-01" if k == "X-Amz-Date" else v) for k, v in view.query]
    assert fails(replace_view(view, query=query)).message.startswith(
        "X-Amz-Date must be in the ISO8601 Long Format"
    )


def test_tampered_query_is_rejected() -> None:
    view = to_view(presigned(params={"partNumber": "1"}), is_s3=True)
    run(view)
    query = [(k, "2" if k == "partNumber" else v) for k, v in view.query]
    error = fails(replace_view(view, query=query))
    assert (error.code, error.http_status) == ("SignatureDoesNotMatch", 403)
    query = [*view.query, ("versionId", "x")]
    assert fails(replace_view(view, query=query)).code == "SignatureDoesNotMatch"


def test_unsigned_amz_headers_are_refused_for_presigned_urls() -> None:
    view = to_view(presigned(method="PUT"), is_s3=True)
    error = fails(with_headers(view, x_amz_acl="public-read", x_amz_meta_a="1"))
    assert (error.code, error.http_status) == ("AccessDenied", 403)
    assert error.message == "There were headers present in the request which were not signed"
    assert error.details == {"HeadersNotSigned": "x-amz-acl, x-amz-meta-a"}


def test_non_s3_presigned_request_hashes_the_body() -> None:
    # botocore's SigV4QueryAuth moves form/JSON bodies into the query string,
    # so the signed payload is the (empty) body left behind.
    request = AWSRequest("POST", "https://kms.us-east-1.strongroom.test/",
                         data={"KeyId": "alias/app"},
                         headers={"X-Amz-Target": "TrentService.DescribeKey"})
    sign(SigV4QueryAuth(creds(), "kms", "us-east-1", expires=300), request)
    view = to_view(request, is_s3=False)
    assert ("KeyId", "alias/app") in list(view.query)
    result = run(view, body=b"", service="kms")
    assert (result.auth_method, result.payload.mode) == ("QueryString", PayloadMode.VERIFIED)
    error = fails(view, body=b"smuggled")
    assert (error.code, error.http_status) == ("InvalidSignatureException", 400)
    assert hashlib.sha256(b"smuggled").hexdigest() in error.details["CanonicalRequest"]
    error = fails(view, body=b"", now=SIGNED_AT + timedelta(seconds=301))
    assert (error.code, error.http_status) == ("InvalidSignatureException", 400)


def test_json_service_query_parameter_errors() -> None:
    request = AWSRequest("POST", "https://kms.us-east-1.strongroom.test/", data=b"{}")
    sign(SigV4QueryAuth(creds(), "kms", "us-east-1"), request)
    view = to_view(request, is_s3=False)
    query = [(k, v) for k, v in view.query if k not in ("X-Amz-Date", "X-Amz-SignedHeaders")]
    error = fails(replace_view(view, query=query), body=b"{}")
    assert (error.code, error.http_status) == ("IncompleteSignatureException", 400)
    assert error.message == (
        "AWS query-string parameters must include 'X-Amz-Date'. AWS query-string parameters "
        "must include 'X-Amz-SignedHeaders'. Re-examine the query-string parameters."
    )
