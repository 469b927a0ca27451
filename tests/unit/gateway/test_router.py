"""Routing by X-Amz-Target, credential scope, Query Action and S3 host style."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from gateway.aws import router
from gateway.aws.router import JSON, QUERY, REST_XML, Route


def _auth(service: str) -> str:
    return (f"AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20240101/us-east-1/{service}/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=abc")


def classify(method: str = "GET", headers: dict | None = None, query: list | None = None,
             host: str = "127.0.0.1:4566") -> Route:
    return router.classify(method, CIMultiDict(headers or {}), query or [], host)


@pytest.mark.parametrize(("target", "service", "op"), [
    ("TrentService.Encrypt", "kms", "Encrypt"),
    ("CloudTrail_20131101.CreateTrail", "cloudtrail", "CreateTrail"),
    ("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents", "cloudtrail", "LookupEvents"),
    ("DynamoDB_20120810.GetItem", "", "GetItem"),
])
def test_target(target: str, service: str, op: str) -> None:
    assert classify("POST", {"X-Amz-Target": target, "Authorization": _auth("kms")}) == \
        Route(service, JSON, op)


def test_target_header_is_case_insensitive() -> None:
    assert classify("POST", {"x-amz-target": "TrentService.ListKeys"}).service == "kms"


@pytest.mark.parametrize(("scope", "expected"), [
    ("kms", Route("kms", JSON)),
    ("cloudtrail", Route("cloudtrail", JSON)),
    ("s3", Route("s3", REST_XML)),
])
def test_scope(scope: str, expected: Route) -> None:
    assert classify("POST", {"Authorization": _auth(scope)}) == expected


def test_query_scope_with_form_body_needs_the_body() -> None:
    route = classify("POST", {"Authorization": _auth("sts"),
                              "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    assert route == Route("sts", QUERY, None, needs_body=True)
    assert router.route_query([("Action", "GetCallerIdentity"), ("Version", "2011-06-15")],
                              route.service) == Route("sts", QUERY, "GetCallerIdentity")


def test_query_action_in_query_string() -> None:
    assert classify("GET", {"Authorization": _auth("iam")}, [("Action", "ListUsers")]) == \
        Route("iam", QUERY, "ListUsers")


def test_presigned_scope() -> None:
    q = [("X-Amz-Credential", "AKIA/20240101/us-east-1/s3/aws4_request"), ("X-Amz-Signature", "x")]
    assert classify("GET", {}, q) == Route("s3", REST_XML)
    q = [("Action", "GetCallerIdentity"), ("Version", "2011-06-15"),
         ("X-Amz-Credential", "AKIA/20240101/us-east-1/sts/aws4_request")]
    assert classify("GET", {}, q) == Route("sts", QUERY, "GetCallerIdentity")


def test_sigv2_is_s3() -> None:
    assert classify("GET", {"Authorization": "AWS AKIAEXAMPLE:c2lnbmF0dXJl"}).service == "s3"
    q = [("AWSAccessKeyId", "AKIA"), ("Signature", "x"), ("Expires", "1700000000")]
    assert classify("GET", {}, q).service == "s3"


@pytest.mark.parametrize(("params", "service"), [
    ([("Action", "ListUsers"), ("Version", "2010-05-08")], "iam"),
    ([("Action", "AssumeRole"), ("Version", "2011-06-15")], "sts"),
    ([("Action", "GetCallerIdentity")], "sts"),
    ([("Action", "CreateUser")], "iam"),
])
def test_unsigned_query_by_version_or_action(params: list, service: str) -> None:
    assert router.route_query(params).service == service


def test_unsigned_form_post_needs_body() -> None:
    route = classify("POST", {"Content-Type": "application/x-www-form-urlencoded"})
    assert route.needs_body and route.protocol == QUERY and route.service == ""


@pytest.mark.parametrize(("host", "bucket"), [
    ("127.0.0.1:4566", None),
    ("localhost:4566", None),
    ("s3.localhost:4566", None),
    ("mybucket.localhost:4566", "mybucket"),
    ("mybucket.s3.localhost:4566", "mybucket"),
    ("my.dotted.bucket.s3.localhost", "my.dotted.bucket"),
    ("mybucket.s3.us-east-1.localhost:4566", "mybucket"),
    ("mybucket.s3.amazonaws.com", "mybucket"),
    ("mybucket.s3.eu-west-1.amazonaws.com", "mybucket"),
    ("mybucket.s3-eu-west-1.amazonaws.com", "mybucket"),
    ("s3.eu-west-1.amazonaws.com", None),
    ("kms.us-east-1.amazonaws.com", None),
    ("[::1]:4566", None),
])
def test_virtual_host_bucket(host: str, bucket: str | None) -> None:
    assert router.virtual_host_bucket(host) == bucket


def test_everything_else_is_s3_path_style() -> None:
    assert classify("PUT", {}, [], "127.0.0.1:4566") == Route("s3", REST_XML)
    assert classify("GET", {"Authorization": _auth("s3")}, [], "b1.localhost:4566") == \
        Route("s3", REST_XML, bucket="b1")


def test_virtual_host_form_post_is_s3() -> None:
    route = classify("POST", {"Content-Type": "application/x-www-form-urlencoded"}, [],
                     "b1.s3.localhost:4566")
    assert route == Route("s3", REST_XML, bucket="b1")
