"""S3's errors: one table, code -> HTTP status, as Amazon S3 answers.

Messages are AWS's texts (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html).
Every S3 error is an :class:`S3Error`; the gRPC interceptor carries code and status to the
gateway, which writes the S3 XML error body. Messages never contain object bytes or keys.
"""

from __future__ import annotations

from common.errors import AwsError, error_class


class S3Error(AwsError):
    """Base of every S3 error."""


def _e(code: str, status: int, grpc_status: str | None = None) -> type[S3Error]:
    return error_class(code, status, grpc_status, base=S3Error)  # type: ignore[return-value]


AccessDenied = _e("AccessDenied", 403)
AccessControlListNotSupported = _e("AccessControlListNotSupported", 400)
BadDigest = _e("BadDigest", 400)
BucketAlreadyExists = _e("BucketAlreadyExists", 409, "ALREADY_EXISTS")
BucketAlreadyOwnedByYou = _e("BucketAlreadyOwnedByYou", 409, "ALREADY_EXISTS")
BucketNotEmpty = _e("BucketNotEmpty", 409)
EntityTooLarge = _e("EntityTooLarge", 400)
EntityTooSmall = _e("EntityTooSmall", 400)
IllegalLocationConstraintException = _e("IllegalLocationConstraintException", 400)
IncompleteBody = _e("IncompleteBody", 400)
InternalError = _e("InternalError", 500)
InvalidArgument = _e("InvalidArgument", 400)
InvalidBucketName = _e("InvalidBucketName", 400)
InvalidDigest = _e("InvalidDigest", 400)
InvalidLocationConstraint = _e("InvalidLocationConstraint", 400)
InvalidPart = _e("InvalidPart", 400)
InvalidPartOrder = _e("InvalidPartOrder", 400)
InvalidRange = _e("InvalidRange", 416)
InvalidRequest = _e("InvalidRequest", 400)
InvalidTag = _e("InvalidTag", 400)
KeyTooLongError = _e("KeyTooLongError", 400)
MalformedACLError = _e("MalformedACLError", 400)
MalformedPolicy = _e("MalformedPolicy", 400)
MalformedXML = _e("MalformedXML", 400)
MethodNotAllowed = _e("MethodNotAllowed", 405)
MetadataTooLarge = _e("MetadataTooLarge", 400)
NoSuchBucket = _e("NoSuchBucket", 404)
NoSuchBucketPolicy = _e("NoSuchBucketPolicy", 404)
NoSuchKey = _e("NoSuchKey", 404)
NoSuchPublicAccessBlockConfiguration = _e("NoSuchPublicAccessBlockConfiguration", 404)
NoSuchTagSet = _e("NoSuchTagSet", 404)
NoSuchUpload = _e("NoSuchUpload", 404)
NotImplementedError_ = _e("NotImplemented", 501)
NotModified = _e("NotModified", 304, "FAILED_PRECONDITION")
OwnershipControlsNotFoundError = _e("OwnershipControlsNotFoundError", 404)
PreconditionFailed = _e("PreconditionFailed", 412)
ServerSideEncryptionConfigurationNotFoundError = _e("ServerSideEncryptionConfigurationNotFoundError", 404)
ConditionalRequestConflict = _e("ConditionalRequestConflict", 409)
KmsDisabled = _e("KMS.DisabledException", 400)
KmsInvalidState = _e("KMS.KMSInvalidStateException", 400)
KmsNotFound = _e("KMS.NotFoundException", 400)
KmsInvalidKeyUsage = _e("KMS.InvalidKeyUsageException", 400)
KmsUnavailable = _e("KMS.KMSInternalException", 500)
SlowDown = _e("SlowDown", 503)

SIGV4_REQUIRED_MESSAGE = ("Requests specifying Server Side Encryption with AWS KMS managed keys "
                          "require AWS Signature Version 4.")


def access_denied() -> S3Error:
    return AccessDenied("Access Denied")


def no_such_bucket() -> S3Error:
    return NoSuchBucket("The specified bucket does not exist")


def no_such_key() -> S3Error:
    return NoSuchKey("The specified key does not exist.")


def no_such_upload() -> S3Error:
    return NoSuchUpload("The specified upload does not exist. The upload ID may be invalid, "
                        "or the upload may have been aborted or completed.")


def malformed_xml() -> S3Error:
    return MalformedXML("The XML you provided was not well-formed or did not validate against "
                        "our published schema")
UnexpectedContent = _e("UnexpectedContent", 400)
MissingSecurityHeader = _e("MissingSecurityHeader", 400)
InvalidPartNumberError = _e("InvalidPartNumber", 416)


def InvalidPartNumber_() -> S3Error:  # noqa: N802 - named after the AWS error
    return InvalidPartNumberError("The requested partnumber is not satisfiable")
