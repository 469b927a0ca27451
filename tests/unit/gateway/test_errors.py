"""One table of the errors Strongroom answers per operation, checked against the botocore
model (the code is one of the operation's error shapes, the status is the modelled one) and
rendered through our protocol layer into what botocore's parser / client exceptions expect."""

from __future__ import annotations

import grpc
import pytest
from botocore import parsers
from botocore.session import get_session

from common.errors import AwsError, make_error
from common.grpc_errors import from_rpc_error, to_rpc_status
from gateway.aws import spec
from gateway.aws.protocols import json as json_protocol
from gateway.aws.protocols import query as query_protocol
from gateway.iam import service as iam_service

#: (service, operation, AWS error code, HTTP status)
ERRORS = [
    ("kms", "Encrypt", "NotFoundException", 400),
    ("kms", "Encrypt", "DisabledException", 400),
    ("kms", "Encrypt", "KMSInvalidStateException", 400),
    ("kms", "Encrypt", "InvalidKeyUsageException", 400),
    ("kms", "Decrypt", "InvalidCiphertextException", 400),
    ("kms", "Decrypt", "IncorrectKeyException", 400),
    ("kms", "DescribeKey", "NotFoundException", 400),
    ("kms", "CreateAlias", "AlreadyExistsException", 400),
    ("kms", "CreateAlias", "InvalidAliasNameException", 400),
    ("kms", "CreateKey", "MalformedPolicyDocumentException", 400),
    ("kms", "CreateKey", "TagException", 400),
    ("kms", "CreateKey", "LimitExceededException", 400),
    ("kms", "ScheduleKeyDeletion", "KMSInvalidStateException", 400),
    ("kms", "PutKeyPolicy", "MalformedPolicyDocumentException", 400),
    ("kms", "Verify", "KMSInvalidSignatureException", 400),
    ("cloudtrail", "CreateTrail", "TrailAlreadyExistsException", 400),
    ("cloudtrail", "GetTrailStatus", "TrailNotFoundException", 400),
    ("cloudtrail", "CreateTrail", "S3BucketDoesNotExistException", 400),
    ("cloudtrail", "LookupEvents", "InvalidLookupAttributesException", 400),
    ("iam", "CreateUser", iam_service.EntityAlreadyExists.code, iam_service.EntityAlreadyExists.http_status),
    ("iam", "GetUser", iam_service.NoSuchEntity.code, iam_service.NoSuchEntity.http_status),
    ("iam", "DeleteUser", iam_service.DeleteConflict.code, iam_service.DeleteConflict.http_status),
    ("iam", "DeleteRole", iam_service.DeleteConflict.code, iam_service.DeleteConflict.http_status),
    ("iam", "CreateAccessKey", iam_service.LimitExceeded.code, iam_service.LimitExceeded.http_status),
    ("iam", "PutUserPolicy", iam_service.MalformedPolicyDocument.code,
     iam_service.MalformedPolicyDocument.http_status),
    ("iam", "CreateRole", iam_service.MalformedPolicyDocument.code,
     iam_service.MalformedPolicyDocument.http_status),
    ("iam", "GetUserPolicy", iam_service.NoSuchEntity.code, 404),
    ("iam", "DeleteAccessKey", iam_service.NoSuchEntity.code, 404),
    ("iam", "ListUsers", "ServiceFailure", 500),
    ("sts", "AssumeRole", "MalformedPolicyDocument", 400),
    ("sts", "AssumeRole", "ExpiredTokenException", 400),
]


def _modelled(service: str, operation: str) -> dict[str, int]:
    svc = spec.load(service)
    model = svc.operation(operation)
    assert model is not None
    return {svc.error_code_of(s): svc.error_status_of(s) for s in model.error_shapes}


@pytest.mark.parametrize(("service", "operation", "code", "status"), ERRORS)
def test_error_is_modelled_for_the_operation(service: str, operation: str, code: str, status: int) -> None:
    modelled = _modelled(service, operation)
    assert code in modelled, f"{code} is not an error of {service}:{operation}"
    assert modelled[code] == status


def across_grpc(original: AwsError) -> AwsError:
    """An error as a service sends it over gRPC and the gateway decodes it."""
    rpc_status = to_rpc_status(original)

    class FakeRpcError(grpc.RpcError):
        def code(self) -> grpc.StatusCode:
            return rpc_status.code

        def details(self) -> str:
            return rpc_status.details

        def trailing_metadata(self):  # type: ignore[no-untyped-def]
            return rpc_status.trailing_metadata

    return from_rpc_error(FakeRpcError())


@pytest.mark.parametrize(("service", "operation", "code", "status"), ERRORS)
def test_error_survives_grpc_and_renders_for_botocore(service: str, operation: str, code: str,
                                                      status: int) -> None:
    original = make_error(code, f"message for {code}", status)
    decoded = across_grpc(original)  # Status + ErrorInfo, decoded by the gateway
    assert (decoded.code, decoded.http_status, decoded.message) == (code, status, f"message for {code}")

    svc = spec.load(service)
    model = svc.operation(operation)
    if svc.protocol == "json":
        resp = json_protocol.error_response(decoded, "rid")
        parser = parsers.create_parser("json")
    else:
        resp = query_protocol.error_response(decoded, svc.xml_namespace, "rid")
        parser = parsers.create_parser("query")
    assert resp.status == status
    parsed = parser.parse({"body": resp.body, "headers": dict(resp.headers), "status_code": resp.status},
                          model.output_shape)
    assert parsed["Error"]["Code"] == code
    assert parsed["Error"]["Message"] == f"message for {code}"
    # botocore's client maps the code to the modelled exception class
    client = get_session().create_client(service, region_name="us-east-1",
                                         aws_access_key_id="a", aws_secret_access_key="b")
    exc_class = client.exceptions.from_code(code)
    assert exc_class is not client.exceptions.ClientError


def test_query_renames_json_flavour_codes() -> None:
    from gateway.aws.errors import for_query, query_auth_error

    assert for_query(make_error("ValidationException", "x", 400)) == ("ValidationError", 400)
    assert for_query(make_error("NoSuchEntity", "x", 404)) == ("NoSuchEntity", 404)
    # a modelled STS error keeps its code
    assert for_query(make_error("ExpiredTokenException", "x", 400)) == ("ExpiredTokenException", 400)

    def q(code: str, status: int) -> tuple[str, int]:
        err = query_auth_error(code, "m", status)
        return err.code, err.http_status
    assert q("InvalidSignatureException", 400) == ("SignatureDoesNotMatch", 403)
    assert q("UnrecognizedClientException", 400) == ("InvalidClientTokenId", 403)
    assert q("MissingAuthenticationTokenException", 403) == ("MissingAuthenticationToken", 403)
    assert q("ExpiredTokenException", 400) == ("ExpiredToken", 403)


def test_query_error_body_shape() -> None:
    err: AwsError = iam_service.NoSuchEntity("The user with name x cannot be found.")
    resp = query_protocol.error_response(err, "https://iam.amazonaws.com/doc/2010-05-08/", "r-1")
    assert resp.status == 404
    assert resp.body == (
        b'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>'
        b"<Code>NoSuchEntity</Code><Message>The user with name x cannot be found.</Message></Error>"
        b"<RequestId>r-1</RequestId></ErrorResponse>")
    assert resp.headers["x-amzn-RequestId"] == "r-1"


def test_json_error_body_shape() -> None:
    resp = json_protocol.error_response(make_error("NotFoundException", "Key 'x' does not exist", 400), "r")
    assert resp.status == 400
    assert resp.body == b'{"__type":"NotFoundException","message":"Key \'x\' does not exist"}'
    assert resp.headers["Content-Type"] == "application/x-amz-json-1.1"


def test_s3_error_body_and_headers_agree() -> None:
    from gateway.aws.protocols import s3_error

    resp = s3_error.error_response("RequestTimeTooSkewed", "The difference between the request time "
                                   "and the current time is too large.", 403, "rid-9",
                                   details={"RequestTime": "20240101T000000Z", "MaxAllowedSkewMilliseconds": "900000"})
    assert resp.status == 403
    body = resp.body.decode()
    assert body.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>RequestTimeTooSkewed</Code>')
    assert "<RequestTime>20240101T000000Z</RequestTime><MaxAllowedSkewMilliseconds>900000" in body
    assert f"<RequestId>rid-9</RequestId><HostId>{resp.headers['x-amz-id-2']}</HostId>" in body
    assert resp.headers["x-amz-request-id"] == "rid-9"
    head = s3_error.error_response("NoSuchKey", "m", 404, "r", head=True)
    assert head.status == 404 and head.body is None


def test_error_details_cross_grpc_in_order() -> None:
    """Extra error body elements (S3's InvalidRange names the range and the object size)
    travel in ErrorInfo.metadata and come back in their order."""
    original = make_error("InvalidRange", "The requested range is not satisfiable", 416)
    original.details = {"RangeRequested": "bytes=50-60", "ActualObjectSize": "10"}
    decoded = across_grpc(original)
    assert list(decoded.details.items()) == [("RangeRequested", "bytes=50-60"), ("ActualObjectSize", "10")]
    assert decoded.code == "InvalidRange"
    assert make_error("NoSuchKey", "x", 404).details == {}
