"""One error type for every AWS-facing failure.

Domain code raises subclasses of :class:`AwsError`; each names the AWS error code, the HTTP
status AWS answers with, and the gRPC status code it crosses the process boundary with. The
gRPC layer (common/grpc_errors.py) turns them into ``google.rpc.Status`` with exactly one
``ErrorInfo``; the gateway turns that back into the AWS wire error of the right protocol.

Messages must never contain plaintext, key material or secrets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar


class AwsError(Exception):
    """An error with AWS's code, HTTP status and message."""

    code: ClassVar[str] = "InternalFailure"
    http_status: ClassVar[int] = 500
    grpc_status: ClassVar[str] = "INTERNAL"  # name of a grpc.StatusCode member
    sender_fault: ClassVar[bool] = True

    def __init__(self, message: str = "", details: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Extra elements AWS puts in the error body beside Code and Message (S3's
        # InvalidRange: RangeRequested, ActualObjectSize), in order.
        self.details: dict[str, str] = dict(details) if details else {}

    @property
    def reason(self) -> str:
        """UPPER_SNAKE_CASE form of the AWS code, used as ``ErrorInfo.reason``."""
        return upper_snake(self.code)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}: {self.message!r})"


def upper_snake(code: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", code).upper()


_GRPC_BY_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "FAILED_PRECONDITION",
    412: "FAILED_PRECONDITION",
    416: "OUT_OF_RANGE",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
}


def error_class(code: str, http_status: int = 400, grpc_status: str | None = None,
                base: type[AwsError] = AwsError) -> type[AwsError]:
    """Make an AwsError subclass for ``code`` (for tables of AWS errors)."""
    attrs = {
        "code": code,
        "http_status": http_status,
        "grpc_status": grpc_status or _GRPC_BY_STATUS.get(http_status, "UNKNOWN"),
        "sender_fault": http_status < 500,
    }
    return type(code, (base,), attrs)


def make_error(code: str, message: str, http_status: int = 400) -> AwsError:
    """An AwsError instance for a code known only at run time (e.g. decoded from gRPC)."""
    return error_class(code, http_status)(message)


class InternalFailure(AwsError):
    code = "InternalFailure"
    http_status = 500
    grpc_status = "INTERNAL"
    sender_fault = False


class ServiceUnavailable(AwsError):
    code = "ServiceUnavailable"
    http_status = 503
    grpc_status = "UNAVAILABLE"
    sender_fault = False


class ValidationException(AwsError):
    code = "ValidationException"
    http_status = 400
    grpc_status = "INVALID_ARGUMENT"
