"""S3 Signature Version 2: documented examples and botocore's HmacV1 signers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.awsrequest import AWSRequest
from botocore.utils import percent_encode
from multidict import CIMultiDict

from gateway.auth import HttpRequestView, PayloadMode, parse_query

from .helpers import (
    AKID,
    DOC_AKID,
    SIGNED_AT,
    TEMP_AKID,
    FixedHmacV1Auth,
    FixedHmacV1QueryAuth,
    creds,
    default_lookup,
    fails,
    replace_view,
    run,
    to_view,
    with_headers,
)

S3_ENDPOINT = "https://s3.strongroom.test"

# https://docs.aws.amazon.com/AmazonS3/latest/API/RESTAuthentication.html#RESTAuthenticationExamples
# (bucket awsexamplebucket1, keys of the documentation's example credentials)
DOC_V2: dict[str, tuple[Any, ...]] = {
    "object GET (virtual-hosted)": (
        "GET", "/photos/puppy.jpg", "awsexamplebucket1",
        {"Host": "awsexamplebucket1.us-west-1.s3.amazonaws.com",
         "Date": "Tue, 27 Mar 2007 19:36:42 +0000"},
        "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=",
    ),
    "object PUT": (
        "PUT", "/photos/puppy.jpg", "awsexamplebucket1",
        {"Host": "awsexamplebucket1.s3.us-west-1.amazonaws.com",
         "Date": "Tue, 27 Mar 2007 21:15:45 +0000", "Content-Type": "image/jpeg",
         "Content-Length": "94328"},
        "iqRzw+ileNPu1fhspnRs8nOjjIA=",
    ),
    "list": (
        "GET", "/?prefix=photos&max-keys=50&marker=puppy", "awsexamplebucket1",
        {"Host": "awsexamplebucket1.s3.us-west-1.amazonaws.com",
         "Date": "Tue, 27 Mar 2007 19:42:41 +0000", "User-Agent": "Mozilla/5.0"},
        "m0WP8eCtspQl5Ahe6L1SozdX9YA=",
    ),
    "fetch ACL": (
        "GET", "/?acl", "awsexamplebucket1",
        {"Host": "awsexamplebucket1.s3.us-west-1.amazonaws.com",
         "Date": "Tue, 27 Mar 2007 19:44:46 +0000"},
        "82ZHiFIjc+WbcwFKGUVEQspPn+0=",
    ),
    "delete with x-amz-date (documented form)": (
        "DELETE", "/awsexamplebucket1/photos/puppy.jpg", None,
        {"Host": "s3.us-west-1.amazonaws.com", "Date": "Tue, 27 Mar 2007 21:20:27 +0000",
         "x-amz-date": "Tue, 27 Mar 2007 21:20:26 +0000", "User-Agent": "dotnet"},
        "XbyTlbQdu9Xw5o8P4iMwPktxQd8=",
    ),
    "delete with x-amz-date (empty Date line rule)": (
        "DELETE", "/awsexamplebucket1/photos/puppy.jpg", None,
        {"Host": "s3.us-west-1.amazonaws.com", "Date": "Tue, 27 Mar 2007 21:20:27 +0000",
         "x-amz-date": "Tue, 27 Mar 2007 21:20:26 +0000", "User-Agent": "dotnet"},
        "Ri1hpB1zpS9pGqR7y8kuNFCl4sE=",
    ),
    "upload with metadata": (
        "PUT", "/awsexamplebucket1/db-backup.dat.gz", None,
        [("Host", "s3.us-west-1.amazonaws.com"), ("User-Agent", "curl/7.15.5"),
         ("Date", "Tue, 27 Mar 2007 21:06:08 +0000"), ("x-amz-acl", "public-read"),
         ("content-type", "application/x-download"),
         ("Content-MD5", "4gJE4saaMU4BqNR0kLY+lw=="),
         ("Content-Disposition", "attachment; filename=database.dat"),
         ("Content-Encoding", "gzip"), ("Content-Length", "5913339"),
         ("X-Amz-Meta-ReviewedBy", "joe@example.com"),
         ("X-Amz-Meta-ReviewedBy", "jane@example.com"),
         ("X-Amz-Meta-FileChecksum", "0x02661779"),
         ("X-Amz-Meta-ChecksumAlgorithm", "crc32")],
        "pzpCkfxTNZ143SPzMtH8on0yBH8=",
    ),
}


@pytest.mark.parametrize("name", DOC_V2)
def test_documented_sigv2_examples(name: str) -> None:
    method, target, vhost, headers, signature = DOC_V2[name]
    path, _, query = target.partition("?")
    all_headers: CIMultiDict[str] = CIMultiDict(headers)
    all_headers["Authorization"] = f"AWS {DOC_AKID}:{signature}"
    view = HttpRequestView(method, path, parse_query(query), all_headers,
                           all_headers["host"], True)
    date = all_headers.get("x-amz-date", all_headers["date"])
    now = datetime.strptime(date, "%a, %d %b %Y %H:%M:%S %z")
    result = run(view, now=now, s3_vhost_bucket=vhost)
    assert (result.signature_version, result.auth_method) == ("SigV2", "AuthHeader")
    assert (result.region, result.service, result.access_key_id) == (None, "s3", DOC_AKID)


def test_documented_example_with_a_tampered_date_fails() -> None:
    method, target, vhost, headers, signature = DOC_V2["object GET (virtual-hosted)"]
    all_headers: CIMultiDict[str] = CIMultiDict(headers)
    all_headers["Authorization"] = f"AWS {DOC_AKID}:{signature}"
    all_headers["Date"] = "Tue, 27 Mar 2007 19:36:43 +0000"
    view = HttpRequestView(method, target, [], all_headers, all_headers["host"], True)
    error = fails(view, now=datetime(2007, 3, 27, 19, 36, 43, tzinfo=timezone.utc),
                  s3_vhost_bucket=vhost)
    assert (error.code, error.http_status) == ("SignatureDoesNotMatch", 403)
    assert error.details["StringToSign"] == (
        "GET\n\n\nTue, 27 Mar 2007 19:36:43 +0000\n/awsexamplebucket1/photos/puppy.jpg"
    )
    assert error.details["SignatureProvided"] == signature


V2_CASES: dict[str, tuple[str, str, dict[str, str], dict[str, str], bytes]] = {
    "get": ("GET", "/bucket/key", {}, {}, b""),
    "put with standard and amz headers": (
        "PUT", "/bucket/dir/my%20key", {},
        {"Content-Type": "text/plain", "Content-MD5": "XUFAKrxLKna5cZ2REBfFkg==",
         "x-amz-meta-Color": "  blue ", "x-amz-storage-class": "STANDARD"}, b"hello",
    ),
    "sub-resources": (
        "GET", "/bucket/key", {"versionId": "v1", "acl": "", "prefix": "ignored"}, {}, b"",
    ),
    "response overrides": (
        "GET", "/bucket/key",
        {"response-content-disposition": "attachment; filename=\"x y.txt\"",
         "response-content-type": "text/plain"}, {}, b"",
    ),
    "multipart": ("POST", "/bucket/key", {"uploads": ""}, {}, b""),
}


def url(path: str, params: dict[str, str] | None = None) -> str:
    """Like botocore's request serialisation: sub-resources without '=' when blank."""
    if not params:
        return S3_ENDPOINT + path
    parts = [percent_encode(k) + ("=" + percent_encode(v) if v else "") for k, v in params.items()]
    return S3_ENDPOINT + path + "?" + "&".join(parts)


@pytest.mark.parametrize("name", V2_CASES)
def test_botocore_hmacv1_header_requests_are_accepted(name: str) -> None:
    method, path, params, headers, body = V2_CASES[name]
    request = AWSRequest(method, url(path, params), headers=headers, data=body)
    FixedHmacV1Auth(creds()).add_auth(request)
    result = run(to_view(request, is_s3=True))
    assert (result.signature_version, result.auth_method) == ("SigV2", "AuthHeader")
    assert result.payload.mode is PayloadMode.UNSIGNED
    assert result.credential is not None and result.credential.principal == "user/alice"


def test_virtual_hosted_request_signs_the_bucket_in_the_resource() -> None:
    request = AWSRequest("GET", "https://media.s3.strongroom.test/cat.jpg")
    request.auth_path = "/media/cat.jpg"
    FixedHmacV1Auth(creds()).add_auth(request)
    view = to_view(request, is_s3=True)
    run(view, s3_vhost_bucket="media")
    assert fails(view).code == "SignatureDoesNotMatch"  # bucket not passed


def test_wrong_secret_or_tampering() -> None:
    request = AWSRequest("PUT", S3_ENDPOINT + "/bucket/k", headers={"x-amz-meta-a": "1"})
    FixedHmacV1Auth(creds(secret="wrong")).add_auth(request)
    error = fails(to_view(request, is_s3=True))
    assert (error.code, error.http_status) == ("SignatureDoesNotMatch", 403)
    assert error.details["StringToSign"].endswith("\nx-amz-meta-a:1\n/bucket/k")
    request = AWSRequest("PUT", S3_ENDPOINT + "/bucket/k", headers={"x-amz-meta-a": "1"})
    FixedHmacV1Auth(creds()).add_auth(request)
    view = to_view(request, is_s3=True)
    run(view)
    assert fails(with_headers(view, x_amz_meta_a="2")).code == "SignatureDoesNotMatch"
    assert fails(with_headers(view, x_amz_meta_b="new")).code == "SignatureDoesNotMatch"
    assert fails(replace_view(view, query=[("acl", "")])).code == "SignatureDoesNotMatch"
    assert fails(replace_view(view, raw_path="/bucket/j")).code == "SignatureDoesNotMatch"


def test_sigv2_clock_skew() -> None:
    request = AWSRequest("GET", S3_ENDPOINT + "/bucket/k")
    FixedHmacV1Auth(creds(), at=SIGNED_AT - timedelta(minutes=20)).add_auth(request)
    error = fails(to_view(request, is_s3=True))
    assert (error.code, error.http_status) == ("RequestTimeTooSkewed", 403)
    assert error.details["RequestTime"] == "Wed, 01 May 2024 11:40:00 GMT"
    error = fails(with_headers(to_view(request, is_s3=True), date=None))
    assert (error.code, error.message) == (
        "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header"
    )


def test_sigv2_session_token() -> None:
    request = AWSRequest("GET", S3_ENDPOINT + "/bucket/k")
    FixedHmacV1Auth(creds(temporary=True)).add_auth(request)
    view = to_view(request, is_s3=True)
    assert run(view).access_key_id == TEMP_AKID
    assert fails(with_headers(view, x_amz_security_token="other")).code == "InvalidToken"
    lookup = default_lookup(expires_at=SIGNED_AT)
    assert fails(view, lookup=lookup).code == "ExpiredToken"


def test_malformed_sigv2_header() -> None:
    request = AWSRequest("GET", S3_ENDPOINT + "/bucket/k")
    FixedHmacV1Auth(creds()).add_auth(request)
    view = with_headers(to_view(request, is_s3=True), authorization=f"AWS {AKID}")
    error = fails(view)
    assert (error.code, error.http_status, error.message) == (
        "InvalidArgument", 400,
        "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
    )


def test_sigv2_is_s3_only() -> None:
    request = AWSRequest("GET", S3_ENDPOINT + "/bucket/k")
    FixedHmacV1Auth(creds()).add_auth(request)
    error = fails(to_view(request, is_s3=False))
    assert error.code == "IncompleteSignatureException"


# --------------------------------------------------------------------------
# query string


def test_botocore_hmacv1_query_until_expiry() -> None:
    request = AWSRequest("GET", url("/bucket/some%20key", {"response-content-type": "text/plain"}))
    FixedHmacV1QueryAuth(creds(), expires=600).add_auth(request)
    assert "AWSAccessKeyId=" in request.url and "Signature=" in request.url
    view = to_view(request, is_s3=True, drop_headers=["Date"])  # a browser sends no Date
    result = run(view, now=SIGNED_AT + timedelta(seconds=600))
    assert (result.signature_version, result.auth_method) == ("SigV2", "QueryString")
    error = fails(view, now=SIGNED_AT + timedelta(seconds=601))
    assert (error.code, error.http_status, error.message) == (
        "AccessDenied", 403, "Request has expired"
    )
    assert error.details == {"Expires": "2024-05-01T12:10:00Z",
                             "ServerTime": "2024-05-01T12:10:01Z"}


def test_hmacv1_query_with_session_token_and_content_type() -> None:
    request = AWSRequest("PUT", S3_ENDPOINT + "/bucket/k", headers={"Content-Type": "image/png"})
    FixedHmacV1QueryAuth(creds(temporary=True), expires=60).add_auth(request)
    assert "x-amz-security-token=" in request.url
    # What a browser following the URL sends: no Date, no token header.
    view = to_view(request, is_s3=True, drop_headers=["Date", "X-Amz-Security-Token"])
    assert run(view).access_key_id == TEMP_AKID
    query = [(k, "forged" if k == "x-amz-security-token" else v) for k, v in view.query]
    assert fails(replace_view(view, query=query)).code == "InvalidToken"


def test_hmacv1_query_tampering_and_missing_parameters() -> None:
    request = AWSRequest("GET", url("/bucket/k", {"versionId": "1"}))
    FixedHmacV1QueryAuth(creds(), expires=60).add_auth(request)
    view = to_view(request, is_s3=True)
    run(view)
    query = [(k, "2" if k == "versionId" else v) for k, v in view.query]
    assert fails(replace_view(view, query=query)).code == "SignatureDoesNotMatch"
    query = [(k, v) for k, v in view.query if k != "Expires"]
    error = fails(replace_view(view, query=query))
    assert (error.code, error.message) == (
        "AccessDenied",
        "Query-string authentication requires the Signature, Expires and AWSAccessKeyId "
        "parameters",
    )
    query = [(k, "soon" if k == "Expires" else v) for k, v in view.query]
    assert fails(replace_view(view, query=query)).message == (
        "Invalid date (should be seconds since epoch): soon"
    )


def test_blank_sub_resource_signed_with_or_without_equals() -> None:
    for target in ("/bucket?acl", "/bucket?acl="):
        request = AWSRequest("GET", S3_ENDPOINT + target)
        FixedHmacV1Auth(creds()).add_auth(request)
        result = run(to_view(request, is_s3=True))
        assert result.signature_version == "SigV2"
