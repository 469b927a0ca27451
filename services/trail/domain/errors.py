"""CloudTrail's errors (botocore model cloudtrail/2013-11-01: every error is HTTP 400).

Messages mirror AWS's texts where they are known (trail names, unknown trails); the rest are
short factual sentences. None ever carries record contents.
"""

from __future__ import annotations

from common.errors import AwsError, error_class

_CODES = (
    "CloudTrailARNInvalidException",
    "InsightNotEnabledException",
    "InsufficientEncryptionPolicyException",
    "InsufficientS3BucketPolicyException",
    "InvalidEventCategoryException",
    "InvalidEventSelectorsException",
    "InvalidHomeRegionException",
    "InvalidInsightSelectorsException",
    "InvalidKmsKeyIdException",
    "InvalidLookupAttributesException",
    "InvalidMaxResultsException",
    "InvalidNextTokenException",
    "InvalidParameterCombinationException",
    "InvalidParameterException",
    "InvalidS3BucketNameException",
    "InvalidS3PrefixException",
    "InvalidSnsTopicNameException",
    "InvalidTagParameterException",
    "InvalidTimeRangeException",
    "InvalidTokenException",
    "InvalidTrailNameException",
    "KmsException",
    "KmsKeyNotFoundException",
    "MaximumNumberOfTrailsExceededException",
    "OperationNotPermittedException",
    "ResourceNotFoundException",
    "ResourceTypeNotSupportedException",
    "S3BucketDoesNotExistException",
    "TagsLimitExceededException",
    "TrailAlreadyExistsException",
    "TrailNotFoundException",
    "UnsupportedOperationException",
    "InvalidCloudWatchLogsLogGroupArnException",
    "InvalidCloudWatchLogsRoleArnException",
    "CloudWatchLogsDeliveryUnavailableException",
    "InsufficientSnsTopicPolicyException",
    "OrganizationsNotInUseException",
    "ThrottlingException",
)


class TrailError(AwsError):
    """Base of every CloudTrail error (HTTP 400)."""

    http_status = 400
    grpc_status = "INVALID_ARGUMENT"


ERRORS: dict[str, type[AwsError]] = {code: error_class(code, 400, base=TrailError) for code in _CODES}

# Not-found style errors cross gRPC as NOT_FOUND (still HTTP 400 on the AWS wire).
for _code in (
    "TrailNotFoundException",
    "ResourceNotFoundException",
    "S3BucketDoesNotExistException",
    "KmsKeyNotFoundException",
    "InsightNotEnabledException",
):
    ERRORS[_code] = error_class(_code, 400, grpc_status="NOT_FOUND", base=TrailError)
for _code in ("TrailAlreadyExistsException",):
    ERRORS[_code] = error_class(_code, 400, grpc_status="ALREADY_EXISTS", base=TrailError)
for _code in ("InsufficientS3BucketPolicyException", "InsufficientEncryptionPolicyException"):
    ERRORS[_code] = error_class(_code, 400, grpc_status="FAILED_PRECONDITION", base=TrailError)
for _code in ("MaximumNumberOfTrailsExceededException", "TagsLimitExceededException"):
    ERRORS[_code] = error_class(_code, 400, grpc_status="RESOURCE_EXHAUSTED", base=TrailError)


def err(code: str, message: str) -> AwsError:
    """An instance of the CloudTrail error ``code``."""
    return ERRORS[code](message)
