"""The KMS error table: every AWS KMS error code this service raises, with its HTTP status.

Codes and statuses are those of the AWS KMS API reference (all are 400 except the internal
ones); messages are built where the error is raised and never contain plaintext or keys.
Decryption failures of every kind collapse into ``InvalidCiphertextException`` with an empty
message, as AWS answers: no oracle.
"""

from __future__ import annotations

from common.errors import AwsError, ValidationException, error_class

__all__ = [
    "AccessDeniedException", "AlreadyExistsException", "ConflictException", "DisabledException",
    "DryRunOperationException", "ExpiredImportTokenException", "IncorrectKeyException",
    "IncorrectKeyMaterialException", "InvalidAliasNameException", "InvalidArnException",
    "InvalidCiphertextException", "InvalidGrantIdException", "InvalidGrantTokenException",
    "InvalidImportTokenException", "InvalidKeyUsageException", "InvalidMarkerException",
    "KMSInternalException", "KMSInvalidMacException", "KMSInvalidSignatureException",
    "KMSInvalidStateException", "KeyUnavailableException", "LimitExceededException",
    "MalformedPolicyDocumentException", "NotAuthorizedException", "NotFoundException",
    "TagException", "UnsupportedOperationException", "ValidationException",
    "CustomKeyStoreNotFoundException", "AwsError",
]

AccessDeniedException = error_class("AccessDeniedException", 400, "PERMISSION_DENIED")
AlreadyExistsException = error_class("AlreadyExistsException", 400, "ALREADY_EXISTS")
ConflictException = error_class("ConflictException", 400, "ABORTED")
CustomKeyStoreNotFoundException = error_class("CustomKeyStoreNotFoundException", 400, "NOT_FOUND")
DisabledException = error_class("DisabledException", 400, "FAILED_PRECONDITION")
DryRunOperationException = error_class("DryRunOperationException", 412, "FAILED_PRECONDITION")
ExpiredImportTokenException = error_class("ExpiredImportTokenException", 400)
IncorrectKeyException = error_class("IncorrectKeyException", 400)
IncorrectKeyMaterialException = error_class("IncorrectKeyMaterialException", 400)
InvalidAliasNameException = error_class("InvalidAliasNameException", 400)
InvalidArnException = error_class("InvalidArnException", 400)
InvalidCiphertextException = error_class("InvalidCiphertextException", 400)
InvalidGrantIdException = error_class("InvalidGrantIdException", 400)
InvalidGrantTokenException = error_class("InvalidGrantTokenException", 400)
InvalidImportTokenException = error_class("InvalidImportTokenException", 400)
InvalidKeyUsageException = error_class("InvalidKeyUsageException", 400)
InvalidMarkerException = error_class("InvalidMarkerException", 400)
KMSInternalException = error_class("KMSInternalException", 500, "INTERNAL")
KMSInvalidMacException = error_class("KMSInvalidMacException", 400)
KMSInvalidSignatureException = error_class("KMSInvalidSignatureException", 400)
KMSInvalidStateException = error_class("KMSInvalidStateException", 400, "FAILED_PRECONDITION")
KeyUnavailableException = error_class("KeyUnavailableException", 500, "UNAVAILABLE")
LimitExceededException = error_class("LimitExceededException", 400, "RESOURCE_EXHAUSTED")
MalformedPolicyDocumentException = error_class("MalformedPolicyDocumentException", 400)
NotAuthorizedException = error_class("NotAuthorizedException", 400, "PERMISSION_DENIED")
NotFoundException = error_class("NotFoundException", 400, "NOT_FOUND")
TagException = error_class("TagException", 400)
UnsupportedOperationException = error_class("UnsupportedOperationException", 400, "UNIMPLEMENTED")


def invalid_ciphertext() -> AwsError:
    """The one decryption failure (corrupt blob, wrong context, unknown version...)."""
    return InvalidCiphertextException("")
