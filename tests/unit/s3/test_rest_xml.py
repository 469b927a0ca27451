"""Contract tests: botocore's own S3 serialiser/parser round-tripped through our REST-XML layer."""

from __future__ import annotations

import urllib.parse
from datetime import datetime, timezone
from typing import Any

import pytest
from botocore import parsers, serialize
from urllib3._collections import HTTPHeaderDict

from gateway.aws.protocols.rest_xml import s3_protocol, parse_xml_document

P = s3_protocol()
MODEL = P.spec.model


def _request(op: str, params: dict[str, Any]) -> dict[str, Any]:
    om = MODEL.operation_model(op)
    req = serialize.create_serializer("rest-xml").serialize_to_request(params, om)
    path, _, query = req["url_path"].partition("?")
    qs = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    qs.update({k: str(v) for k, v in req["query_string"].items()})
    raw = urllib.parse.unquote(path)[1:]
    bucket, _, key = raw.partition("/")
    body = req["body"] if isinstance(req["body"], bytes) else (req["body"].encode() if req["body"] else None)
    route = P.route(req["method"], bucket or None, key or None, qs, req["headers"])
    assert route.name == op
    return P.parse_request(route, bucket=bucket or None, key=key or None, query=qs, headers=req["headers"], body=body)


@pytest.mark.parametrize(("op", "params"), [
    ("CreateBucket", {"Bucket": "bkt", "CreateBucketConfiguration": {"LocationConstraint": "eu-west-1"},
                      "ObjectOwnership": "BucketOwnerPreferred"}),
    ("PutObject", {"Bucket": "bkt", "Key": "a/b c+d", "ContentType": "text/plain", "Metadata": {"k": "v"},
                   "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/x", "BucketKeyEnabled": True,
                   "ChecksumCRC32": "AAAAAA=="}),
    ("GetObject", {"Bucket": "bkt", "Key": "k", "Range": "bytes=0-9", "PartNumber": 2,
                   "IfModifiedSince": datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)}),
    ("DeleteObjects", {"Bucket": "bkt", "Delete": {"Objects": [{"Key": "a"}, {"Key": "b&c"}], "Quiet": True}}),
    ("CompleteMultipartUpload", {"Bucket": "bkt", "Key": "k", "UploadId": "u1", "MultipartUpload": {
        "Parts": [{"PartNumber": 1, "ETag": '"e1"'}, {"PartNumber": 2, "ETag": '"e2"', "ChecksumCRC32": "AAAAAA=="}]}}),
    ("PutBucketAcl", {"Bucket": "bkt", "AccessControlPolicy": {"Owner": {"ID": "o"}, "Grants": [
        {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}, "Permission": "READ"},
        {"Grantee": {"Type": "CanonicalUser", "ID": "abc"}, "Permission": "FULL_CONTROL"}]}}),
    ("PutBucketEncryption", {"Bucket": "bkt", "ServerSideEncryptionConfiguration": {"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "k"},
        "BucketKeyEnabled": True}]}}),
    ("PutPublicAccessBlock", {"Bucket": "bkt", "PublicAccessBlockConfiguration": {
        "BlockPublicAcls": False, "IgnorePublicAcls": True, "BlockPublicPolicy": False, "RestrictPublicBuckets": True}}),
    ("ListObjectsV2", {"Bucket": "bkt", "Prefix": "p/", "Delimiter": "/", "MaxKeys": 5, "StartAfter": "p/a"}),
    ("UploadPartCopy", {"Bucket": "bkt", "Key": "k", "UploadId": "u", "PartNumber": 3, "CopySource": "src/key"}),
    ("PutObjectTagging", {"Bucket": "bkt", "Key": "k", "Tagging": {"TagSet": [{"Key": "a", "Value": "1"}]}}),
    ("PutBucketPolicy", {"Bucket": "bkt", "Policy": '{"Statement": []}'}),
])
def test_requests_roundtrip(op: str, params: dict[str, Any]) -> None:
    parsed = _request(op, params)
    for name, value in params.items():
        if name == "CopySource":
            assert parsed[name].endswith("src/key")
        elif name == "ContentMD5":
            continue
        else:
            assert parsed[name] == value, name


NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)


@pytest.mark.parametrize(("op", "value"), [
    ("ListObjectsV2", {"IsTruncated": True, "Contents": [{"Key": "a<b", "LastModified": NOW, "ETag": '"e"', "Size": 3,
                                                          "StorageClass": "STANDARD", "ChecksumAlgorithm": ["CRC32"]}],
                       "Name": "bkt", "Prefix": "", "MaxKeys": 1000, "CommonPrefixes": [{"Prefix": "p/"}],
                       "KeyCount": 2, "NextContinuationToken": "tok"}),
    ("ListBuckets", {"Buckets": [{"Name": "b", "CreationDate": NOW, "BucketRegion": "us-east-1"}], "Owner": {"ID": "x"}}),
    ("GetBucketAcl", {"Owner": {"ID": "o"}, "Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": "o"},
                                                        "Permission": "FULL_CONTROL"}]}),
    ("DeleteObjects", {"Deleted": [{"Key": "a"}], "Errors": [{"Key": "b", "Code": "AccessDenied", "Message": "Access Denied"}]}),
    ("GetObjectTagging", {"TagSet": [{"Key": "a", "Value": "1"}]}),
    ("CompleteMultipartUpload", {"Location": "/b/k", "Bucket": "b", "Key": "k", "ETag": '"x-2"',
                                 "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "arn", "BucketKeyEnabled": True}),
    ("HeadObject", {"ContentLength": 5, "ETag": '"e"', "LastModified": NOW.replace(microsecond=0),
                    "Metadata": {"color": "blue"}, "ServerSideEncryption": "AES256", "ContentType": "text/plain"}),
    ("GetBucketEncryption", {"ServerSideEncryptionConfiguration": {"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": False}]}}),
    ("CopyObject", {"CopyObjectResult": {"ETag": '"e"', "LastModified": NOW}, "ServerSideEncryption": "AES256"}),
    ("ListParts", {"Bucket": "b", "Key": "k", "UploadId": "u", "Parts": [{"PartNumber": 1, "ETag": '"e"', "Size": 5,
                                                                          "LastModified": NOW}],
                   "IsTruncated": False, "MaxParts": 1000}),
])
def test_responses_parse_with_botocore(op: str, value: dict[str, Any]) -> None:
    om = MODEL.operation_model(op)
    status, headers, body = P.render(om, value)
    parsed = parsers.create_parser("rest-xml").parse(
        {"status_code": status, "headers": HTTPHeaderDict(headers), "body": body or b""},
        om.output_shape)
    parsed.pop("ResponseMetadata", None)
    for name, v in value.items():
        assert parsed[name] == v, name


def test_location_and_errors() -> None:
    status, _, body = P.render(MODEL.operation_model("GetBucketLocation"), {"LocationConstraint": "eu-west-1"})
    assert body is not None and b">eu-west-1</LocationConstraint>" in body
    with pytest.raises(Exception) as exc:
        P.route("GET", "bkt", None, {"cors": ""}, {})
    assert getattr(exc.value, "code", "") == "NotImplemented"
    with pytest.raises(Exception) as exc:
        parse_xml_document(b"<Delete><Object>", MODEL.shape_for("Delete"))
    assert getattr(exc.value, "code", "") == "MalformedXML"
    with pytest.raises(Exception) as exc:
        parse_xml_document(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><Delete/>', MODEL.shape_for("Delete"))
    assert getattr(exc.value, "code", "") == "MalformedXML"
