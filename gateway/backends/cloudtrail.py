"""AWS CloudTrail (JSON 1.1, ``X-Amz-Target: CloudTrail_20131101.<Op>``) -> ``strongroom.trail.v1.CloudTrail``.

One row: every CloudTrail operation is the RPC of the same name
(protos/strongroom/trail/v1/trail.proto). Internal RPCs such as ``PutEvents`` are not AWS
operations and are never reachable through the gateway.
"""

from __future__ import annotations

from strongroom.trail.v1 import trail_pb2, trail_pb2_grpc

from gateway.backends.binding import JsonBinding

BINDING = JsonBinding(
    service="cloudtrail",
    backend="trail",
    module=trail_pb2,
    stub_class=trail_pb2_grpc.CloudTrailStub,
    grpc_service="strongroom.trail.v1.CloudTrail",
)
