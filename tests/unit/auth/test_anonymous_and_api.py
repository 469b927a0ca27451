"""Anonymous requests, the public API surface and query decoding."""

from __future__ import annotations

import dataclasses

import pytest
from multidict import CIMultiDict

import gateway.auth as auth
from gateway.auth import (
    AuthError,
    HttpRequestView,
    PayloadMode,
    parse_query,
    require_authenticated,
    verify_payload_hash,
)

from .helpers import default_lookup, run


def view(is_s3: bool, headers: dict[str, str] | None = None,
         query: list[tuple[str, str]] | None = None) -> HttpRequestView:
    all_headers = CIMultiDict({"Host": "s3.strongroom.test", **(headers or {})})
    return HttpRequestView("GET", "/bucket/key", query or [], all_headers,
                           "s3.strongroom.test", is_s3)


def test_no_credentials_is_anonymous() -> None:
    lookup = default_lookup()
    result = run(view(True, query=[("Expires", "1"), ("prefix", "a")]), lookup=lookup)
    assert result.anonymous and result.credential is None
    assert (result.signature_version, result.auth_method, result.region, result.service) == (
        None, None, None, None)
    assert result.payload.mode is PayloadMode.UNSIGNED
    assert lookup.calls == []
    require_authenticated  # S3: anonymous goes on to the bucket policy check


def test_json_services_reject_anonymous_requests() -> None:
    result = run(view(False), body=b"{}")
    assert result.anonymous
    with pytest.raises(AuthError) as caught:
        require_authenticated(result, is_s3=False)
    assert (caught.value.code, caught.value.http_status, caught.value.message) == (
        "MissingAuthenticationTokenException", 403, "Missing Authentication Token"
    )
    with pytest.raises(AuthError) as caught:
        require_authenticated(result, is_s3=True)
    assert (caught.value.code, caught.value.http_status) == ("AccessDenied", 403)


def test_anonymous_s3_put_still_checks_a_declared_body_hash() -> None:
    digest = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"  # "hello"
    result = run(view(True, {"x-amz-content-sha256": digest}))
    assert result.payload.mode is PayloadMode.SHA256
    verify_payload_hash(result, b"hello")
    with pytest.raises(AuthError):
        verify_payload_hash(result, b"hellO")


def test_sigv2_query_names_are_not_credentials_for_json_services() -> None:
    result = run(view(False, query=[("Signature", "x"), ("AWSAccessKeyId", "y")]), body=b"")
    assert result.anonymous


def test_public_api() -> None:
    assert set(auth.__all__) >= {
        "HttpRequestView", "SigningCredential", "CredentialLookup", "AuthResult", "AuthError",
        "authenticate", "verify_payload_hash", "ChunkedBodyDecoder", "require_authenticated",
        "PayloadExpectation", "PayloadMode", "parse_query",
    }
    for cls in (auth.HttpRequestView, auth.SigningCredential, auth.AuthResult,
                auth.PayloadExpectation):
        params = getattr(cls, "__dataclass_params__")
        assert params.frozen and hasattr(cls, "__slots__")
    assert [f.name for f in dataclasses.fields(auth.HttpRequestView)] == [
        "method", "raw_path", "query", "headers", "host", "is_s3"]
    assert [f.name for f in dataclasses.fields(auth.AuthResult)] == [
        "anonymous", "credential", "signature_version", "auth_method", "region", "service",
        "payload"]
    error = AuthError("SignatureDoesNotMatch", "m", 403, {"a": "b"})
    assert (error.code, error.message, error.http_status, error.details) == (
        "SignatureDoesNotMatch", "m", 403, {"a": "b"})
    secret = repr(auth.SigningCredential("AKID", "very-secret", "token"))
    assert "very-secret" not in secret and "token" not in secret


def test_parse_query_keeps_plus_and_blank_values() -> None:
    assert parse_query("a+b=c+d&acl&x=&y=%2B%20%2F&&z=%FF") == [
        ("a+b", "c+d"), ("acl", ""), ("x", ""), ("y", "+ /"), ("z", "\udcff")
    ]
    assert parse_query("") == []


def test_raw_path_with_query_string_is_tolerated() -> None:
    from gateway.auth.canonical import canonical_path

    assert canonical_path("/bucket/a%20b?acl", True) == "/bucket/a%20b"
    assert canonical_path("", True) == "/"
    assert canonical_path("", False) == "/"
    assert canonical_path("/a/../../b//c/", False) == "/b/c/"
