"""AWS KMS (JSON 1.1, ``X-Amz-Target: TrentService.<Op>``) -> ``strongroom.kms.v1.KeyManagementService``.

One row: every KMS operation is the RPC of the same name (protos/strongroom/kms/v1/kms.proto).
"""

from __future__ import annotations

from strongroom.kms.v1 import kms_pb2, kms_pb2_grpc

from gateway.backends.binding import JsonBinding

BINDING = JsonBinding(
    service="kms",
    backend="kms",
    module=kms_pb2,
    stub_class=kms_pb2_grpc.KeyManagementServiceStub,
    grpc_service="strongroom.kms.v1.KeyManagementService",
)
