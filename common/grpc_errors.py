"""AwsError <-> gRPC status with one ``google.rpc.ErrorInfo`` detail.

Wire form (AIP-193): ``google.rpc.Status{code, message, details=[ErrorInfo]}`` sent as the
``grpc-status-details-bin`` trailer. ``ErrorInfo.reason`` is the UPPER_SNAKE_CASE form of the
AWS code; ``metadata`` carries ``aws_code`` (exact AWS code) and ``http_status``, and each of
the error's extra body elements (``AwsError.details``) as ``detail.<n>.<Element>`` (``n``
keeps their order: a protobuf map has none).
Any client language can decode it with the standard google.rpc protos.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from common.errors import AwsError, InternalFailure, ServiceUnavailable, make_error

ERROR_DOMAIN = "strongroom.dev"
_DETAIL = "detail."


def to_rpc_status(err: AwsError) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(
        reason=err.reason,
        domain=ERROR_DOMAIN,
        metadata={"aws_code": err.code, "http_status": str(err.http_status),
                  **{f"{_DETAIL}{i}.{name}": value for i, (name, value) in enumerate(err.details.items())}},
    )
    detail = any_pb2.Any()
    detail.Pack(info)
    code = getattr(grpc.StatusCode, err.grpc_status, grpc.StatusCode.UNKNOWN)
    status = status_pb2.Status(code=code.value[0], message=err.message, details=[detail])
    return rpc_status.to_status(status)


def from_rpc_error(exc: grpc.RpcError) -> AwsError:
    """Decode the AwsError a service raised; transport failures become 503/500."""
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                code = info.metadata.get("aws_code", "InternalFailure")
                http = int(info.metadata.get("http_status", "500"))
                err = make_error(code, status.message, http)
                details = []
                for key, value in info.metadata.items():
                    index, _, name = key[len(_DETAIL):].partition(".")
                    if key.startswith(_DETAIL) and index.isdigit() and name:
                        details.append((int(index), name, value))
                err.details = {name: value for _, name, value in sorted(details)}
                return err
    code = exc.code() if hasattr(exc, "code") else None
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return make_error("NotImplemented", "A header you provided implies functionality that is not implemented.", 501)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return ServiceUnavailable("Service is unavailable. Please retry.")
    return InternalFailure("We encountered an internal error. Please try again.")
