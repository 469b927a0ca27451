"""Generic AWS JSON 1.1 operation -> gRPC binding (KMS, CloudTrail, any JSON service).

A :class:`JsonBinding` names the botocore service, the gRPC backend (channel) it lives on,
the generated proto module and the stub class. The RPC name equals the operation name and its
messages are ``<Op>Request`` / ``<Op>Response``, so there is no per-operation code: adding an
operation to Strongroom is adding its RPC to the service's proto.

:meth:`JsonBinding.operation` resolves an operation name once and caches everything a request
needs (botocore operation model, request descriptor, modelled error codes). Operations the
model has but the proto lacks answer ``UnsupportedOperationException``; names the model does
not have answer ``UnknownOperationException`` (both 400), as AWS does for the latter.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from botocore.model import OperationModel
from google.protobuf.descriptor import Descriptor

from gateway.aws import spec


@dataclass(frozen=True, slots=True)
class BoundOperation:
    name: str
    model: OperationModel
    request: Descriptor
    rpc: str                   # stub attribute
    error_codes: frozenset[str]


@dataclass(frozen=True)
class JsonBinding:
    service: str                     # botocore service name
    backend: str                     # which channel: "kms" | "trail" | "s3"
    module: ModuleType               # generated *_pb2
    stub_class: type
    grpc_service: str                # full gRPC service name (for health checks)
    _ops: dict[str, BoundOperation | None] = field(default_factory=dict, repr=False)

    @functools.cached_property
    def spec(self) -> spec.ServiceSpec:
        return spec.load(self.service)

    @functools.cached_property
    def operation_names(self) -> frozenset[str]:
        return self.spec.operation_names

    def has_operation(self, name: str) -> bool:
        return name in self.operation_names

    def operation(self, name: str) -> BoundOperation | None:
        """The bound operation; None when the model has it but the proto has no RPC."""
        try:
            return self._ops[name]
        except KeyError:
            pass
        bound = self._bind(name)
        self._ops[name] = bound
        return bound

    def _bind(self, name: str) -> BoundOperation | None:
        model = self.spec.operation(name)
        if model is None:
            return None
        file_desc = self.module.DESCRIPTOR
        service = file_desc.services_by_name.get(self.grpc_service.rsplit(".", 1)[-1])
        if service is None or service.methods_by_name.get(name) is None:
            return None
        method = service.methods_by_name[name]
        codes = frozenset(self.spec.error_code_of(s) for s in model.error_shapes)
        return BoundOperation(name=name, model=model, request=method.input_type, rpc=name,
                              error_codes=codes)

    def stub(self, channel: Any) -> Any:
        return self.stub_class(channel)
