"""Binding of Query-protocol operations served inside the gateway process (IAM, STS).

A :class:`LocalBinding` names the botocore service, the CloudTrail ``eventSource`` of its
records and the operation table (gateway/iam/service.py): operation name -> handler, IAM
action and resource used to authorise the call, read-only flag (audit ``readOnly``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.aws import spec
from gateway.iam.service import Operation


@dataclass(frozen=True, slots=True)
class LocalBinding:
    service: str
    event_source: str
    operations: Mapping[str, Operation]

    @property
    def spec(self) -> spec.ServiceSpec:
        return spec.load(self.service)
