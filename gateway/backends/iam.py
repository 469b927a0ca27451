"""AWS IAM (Query protocol, API version 2010-05-08), served in the gateway (gateway/iam/)."""

from __future__ import annotations

from gateway.backends.local import LocalBinding
from gateway.iam.service import IAM_OPERATIONS

BINDING = LocalBinding(service="iam", event_source="iam.amazonaws.com", operations=IAM_OPERATIONS)
