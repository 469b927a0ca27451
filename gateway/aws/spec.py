"""AWS service models, loaded once per process from botocore's data files.

botocore's ``service-2.json`` models are the single source of truth for operation names,
member names, types, constraints and error shapes. Everything derived from them (operation
lookup, per-operation codecs, validators) is cached here or in the modules that use them, so
no request ever touches the loader.
"""

from __future__ import annotations

import functools

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel, Shape

_loader = Loader()


class ServiceSpec:
    """One AWS service as the protocol layer sees it (immutable after construction)."""

    __slots__ = ("name", "model", "protocol", "target_prefix", "api_version", "xml_namespace",
                 "signing_name", "operation_names", "_ops")

    def __init__(self, name: str, model: ServiceModel) -> None:
        self.name = name
        self.model = model
        self.protocol = str(model.protocol)
        self.target_prefix = str(model.metadata.get("targetPrefix", ""))
        self.api_version = str(model.api_version)
        self.xml_namespace = str(model.metadata.get("xmlNamespace", ""))
        self.signing_name = str(model.signing_name)
        self.operation_names = frozenset(model.operation_names)
        self._ops: dict[str, OperationModel] = {}

    def operation(self, name: str) -> OperationModel | None:
        """The operation model, or None when the service has no such operation."""
        op = self._ops.get(name)
        if op is None:
            if name not in self.operation_names:
                return None
            op = self._ops[name] = self.model.operation_model(name)
        return op

    def error_code_of(self, shape: Shape) -> str:
        """The wire code of an error shape (IAM ``NoSuchEntityException`` -> ``NoSuchEntity``)."""
        err = shape.metadata.get("error") or {}
        return str(err.get("code", shape.name))

    def error_status_of(self, shape: Shape, default: int = 400) -> int:
        err = shape.metadata.get("error") or {}
        return int(err.get("httpStatusCode", default))

    def __repr__(self) -> str:
        return f"ServiceSpec({self.name!r}, {self.protocol}, {self.api_version})"


@functools.cache
def load(service: str) -> ServiceSpec:
    """The botocore model of ``service`` (the newest API version botocore ships)."""
    data = _loader.load_service_model(service, "service-2")
    return ServiceSpec(service, ServiceModel(data, service_name=service))


def shape_key(shape: Shape) -> tuple[int, str]:
    """A cache key for compiled per-shape code.

    botocore hands out a new ``Shape`` object every time a member is resolved (so recursive
    shapes never repeat an object), but a shape's name is unique within its service model:
    key by (the model's shape resolver, name). Caches must keep a reference to a shape with
    that key so the resolver, and thus the id, stays alive.
    """
    return (id(getattr(shape, "_shape_resolver", None)), shape.name)
