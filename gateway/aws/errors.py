"""Errors the gateway itself raises, and how AWS error codes differ between protocols.

Services raise :class:`common.errors.AwsError` subclasses; they cross gRPC as
``google.rpc.Status`` + ``ErrorInfo`` and come back here through
``common.grpc_errors.from_rpc_error`` as an ``AwsError`` with AWS's code, message and HTTP
status. Protocol modules render any ``AwsError`` in their wire format; this module holds the
few errors that only the gateway produces and :data:`QUERY_CODES`, the one table of code
renames between the JSON flavour (what gateway.auth and services produce for KMS/CloudTrail)
and the Query flavour (IAM, STS).

Sources: https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html ,
https://docs.aws.amazon.com/IAM/latest/APIReference/CommonErrors.html ,
https://docs.aws.amazon.com/kms/latest/APIReference/CommonErrors.html
"""

from __future__ import annotations

from common.errors import AwsError, error_class

# JSON 1.1 protocol
UnknownOperationException = error_class("UnknownOperationException", 400)
SerializationException = error_class("SerializationException", 400)
UnsupportedOperationException = error_class("UnsupportedOperationException", 400)
AccessDeniedException = error_class("AccessDeniedException", 400)

# Query protocol (IAM, STS)
InvalidAction = error_class("InvalidAction", 400)
MissingAction = error_class("MissingAction", 400)
InvalidParameterValue = error_class("InvalidParameterValue", 400)
MalformedQueryString = error_class("MalformedQueryString", 404)
AccessDenied = error_class("AccessDenied", 403)

# Both
MissingAuthenticationToken = error_class("MissingAuthenticationToken", 403)
InternalFailure = error_class("InternalFailure", 500)


#: Generic-layer code -> (Query code, HTTP status): errors the protocol layer raises in the
#: JSON vocabulary (validation, parsing) as the Query services name them.
QUERY_CODES: dict[str, tuple[str, int]] = {
    "ValidationException": ("ValidationError", 400),
    "UnknownOperationException": ("InvalidAction", 400),
    "SerializationException": ("MalformedInput", 400),
}

#: gateway.auth's non-S3 (JSON-service) flavour -> the Query services' (IAM, STS) answer.
QUERY_AUTH_CODES: dict[str, tuple[str, int]] = {
    "MissingAuthenticationTokenException": ("MissingAuthenticationToken", 403),
    "IncompleteSignatureException": ("IncompleteSignature", 400),
    "UnrecognizedClientException": ("InvalidClientTokenId", 403),
    "InvalidSignatureException": ("SignatureDoesNotMatch", 403),
    "ExpiredTokenException": ("ExpiredToken", 403),
    "AccessDeniedException": ("AccessDenied", 403),
}


def for_query(err: AwsError) -> tuple[str, int]:
    """(code, status) of ``err`` in the Query protocol."""
    mapped = QUERY_CODES.get(err.code)
    if mapped is not None:
        return mapped
    return err.code, err.http_status


def query_auth_error(code: str, message: str, status: int) -> AwsError:
    """An authentication failure (gateway.auth, JSON flavour) as IAM/STS answer it."""
    from common.errors import make_error

    qcode, qstatus = QUERY_AUTH_CODES.get(code, (code, status))
    return make_error(qcode, message, qstatus)


def internal_error() -> AwsError:
    return InternalFailure("We encountered an internal error. Please try again.")
