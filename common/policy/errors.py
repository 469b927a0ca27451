"""Errors raised by the policy engine.

A document that cannot be parsed is never "partially" applied: callers must
treat a policy that raises :class:`MalformedPolicyError` as granting nothing.
When such a document is *stored* (e.g. loaded from a database after a schema
change) the safest course is to refuse the request outright (deny), because
the broken policy may have contained an explicit ``Deny``.
"""

from __future__ import annotations

__all__ = ["MalformedPolicyError"]


class MalformedPolicyError(ValueError):
    """The policy document is not a valid AWS access-policy document.

    ``message`` is a human readable description close to what AWS returns
    (IAM: ``MalformedPolicyDocument``; KMS: ``MalformedPolicyDocumentException``;
    S3: ``MalformedPolicy``).  Services wrap it in their own error shape.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"MalformedPolicyError({self.message!r})"
