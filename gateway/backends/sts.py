"""AWS STS (Query protocol, API version 2011-06-15), served in the gateway (gateway/iam/)."""

from __future__ import annotations

from gateway.backends.local import LocalBinding
from gateway.iam.service import STS_OPERATIONS

BINDING = LocalBinding(service="sts", event_source="sts.amazonaws.com", operations=STS_OPERATIONS)
