"""Trails: the resource, its ARN, and CreateTrail/UpdateTrail validation.

Naming rules (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_CreateTrail.html):
3-128 characters; ASCII letters, digits, periods, underscores and dashes; starts and ends with
a letter or digit; no adjacent periods, underscores or dashes; not an IP address.
A trail is addressed by its name or its ARN ``arn:aws:cloudtrail:<region>:<account>:trail/<name>``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from services.trail.domain.errors import err

MAX_TRAILS_PER_REGION = 5
MAX_TAGS = 50

_ARN_RE = re.compile(r"^arn:aws[a-zA-Z-]*:cloudtrail:([a-z0-9-]+):(\d{12}):trail/(.+)$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_KMS_KEY_RE = re.compile(
    r"^(arn:aws[a-zA-Z-]*:kms:[a-z0-9-]+:\d{12}:(key/[0-9a-fA-F-]{36}|alias/[a-zA-Z0-9/_-]+)"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|alias/[a-zA-Z0-9/_-]+)$"
)


@dataclass(frozen=True, slots=True)
class TrailStatus:
    is_logging: bool = False
    start_logging_time: datetime | None = None
    stop_logging_time: datetime | None = None
    latest_delivery_time: datetime | None = None
    latest_delivery_error: str | None = None
    latest_delivery_attempt_time: datetime | None = None
    latest_delivery_attempt_succeeded: datetime | None = None
    latest_digest_delivery_time: datetime | None = None
    latest_digest_delivery_error: str | None = None


@dataclass(frozen=True, slots=True)
class Trail:
    name: str
    account_id: str
    region: str
    s3_bucket_name: str
    s3_key_prefix: str = ""
    sns_topic_name: str = ""
    include_global_service_events: bool = True
    is_multi_region_trail: bool = False
    log_file_validation_enabled: bool = False
    cloud_watch_logs_log_group_arn: str = ""
    cloud_watch_logs_role_arn: str = ""
    kms_key_id: str = ""  # always a key ARN once stored
    is_organization_trail: bool = False
    event_selectors: tuple[dict[str, Any], ...] = ()
    advanced_event_selectors: tuple[dict[str, Any], ...] = ()
    insight_selectors: tuple[dict[str, Any], ...] = ()
    has_custom_event_selectors: bool = False
    created_at: datetime | None = None
    status: TrailStatus = field(default_factory=TrailStatus)

    @property
    def arn(self) -> str:
        return trail_arn(self.region, self.account_id, self.name)

    @property
    def sns_topic_arn(self) -> str:
        if not self.sns_topic_name:
            return ""
        if self.sns_topic_name.startswith("arn:"):
            return self.sns_topic_name
        return f"arn:aws:sns:{self.region}:{self.account_id}:{self.sns_topic_name}"

    @property
    def has_insight_selectors(self) -> bool:
        return bool(self.insight_selectors)

    def with_status(self, **changes: Any) -> Trail:
        return replace(self, status=replace(self.status, **changes))


def trail_arn(region: str, account_id: str, name: str) -> str:
    return f"arn:aws:cloudtrail:{region}:{account_id}:trail/{name}"


def validate_trail_name(name: str) -> None:
    """AWS's InvalidTrailNameException rules and texts."""
    if len(name) < 3:
        raise err(
            "InvalidTrailNameException",
            "Trail name too short. Minimum allowed length: 3 characters. "
            f"Specified name length: {len(name)} characters.",
        )
    if len(name) > 128:
        raise err(
            "InvalidTrailNameException",
            "Trail name too long. Maximum allowed length: 128 characters. "
            f"Specified name length: {len(name)} characters.",
        )
    if not name[0].isascii() or not name[0].isalnum():
        raise err("InvalidTrailNameException", "Trail name must starts with a letter or number.")
    if not name[-1].isascii() or not name[-1].isalnum():
        raise err("InvalidTrailNameException", "Trail name must ends with a letter or number.")
    if not re.fullmatch(r"[A-Za-z0-9._\-]+", name):
        raise err(
            "InvalidTrailNameException",
            "Trail name or ARN can only contain uppercase letters, lowercase letters, "
            "numbers, periods (.), hyphens (-), and underscores (_).",
        )
    if re.search(r"[._\-]{2}", name):
        raise err(
            "InvalidTrailNameException",
            "Trail name cannot contain adjacent periods (.), hyphens (-), or underscores (_).",
        )
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return
    raise err("InvalidTrailNameException", "Trail name cannot be formatted as an IP address.")


def parse_name_or_arn(value: str, *, account_id: str, region: str) -> str:
    """The trail name that ``value`` (a name or a trail ARN) designates."""
    if value.startswith("arn:"):
        m = _ARN_RE.match(value)
        if not m:
            raise err(
                "CloudTrailARNInvalidException",
                f"Invalid trail ARN: {value}. The ARN must be in the format "
                "arn:aws:cloudtrail:<region>:<account-id>:trail/<trail-name>.",
            )
        arn_region, arn_account, name = m.groups()
        if arn_account != account_id:
            raise err("TrailNotFoundException", f"Unknown trail: {value} for the user: {account_id}")
        if arn_region != region:
            raise err(
                "InvalidHomeRegionException",
                f"This operation must be called from the trail's home region ({arn_region}).",
            )
        return name
    if not value:
        raise err(
            "InvalidTrailNameException",
            "Trail name too short. Minimum allowed length: 3 characters. "
            "Specified name length: 0 characters.",
        )
    validate_trail_name(value)
    return value


def validate_bucket_name(bucket: str) -> None:
    if not bucket:
        raise err("InvalidS3BucketNameException", "S3 bucket name cannot be empty.")
    if not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise err("InvalidS3BucketNameException", f"Bucket name {bucket} is not valid.")


def validate_key_prefix(prefix: str) -> None:
    if len(prefix) > 200:
        raise err(
            "InvalidS3PrefixException",
            f"S3 prefix is too long. Maximum allowed length: 200 characters. "
            f"Specified prefix length: {len(prefix)} characters.",
        )
    if prefix.startswith("/") or "//" in prefix:
        raise err("InvalidS3PrefixException", f"S3 prefix {prefix} is not valid.")


def validate_kms_key_id(key_id: str) -> None:
    if not _KMS_KEY_RE.match(key_id):
        raise err("InvalidKmsKeyIdException", f"Invalid KmsKeyId {key_id}.")


def validate_tags(tags: list[tuple[str, str]], existing: int = 0) -> None:
    keys = [k for k, _ in tags]
    if len(set(keys)) != len(keys):
        raise err("InvalidTagParameterException", "Duplicate tag keys in the request.")
    for key, value in tags:
        if not 1 <= len(key) <= 128:
            raise err("InvalidTagParameterException", "Tag key must be between 1 and 128 characters long.")
        if len(value) > 256:
            raise err("InvalidTagParameterException", "Tag value must be at most 256 characters long.")
        if key.lower().startswith("aws:"):
            raise err("InvalidTagParameterException", "Tag keys cannot start with the aws: prefix.")
    if existing + len(tags) > MAX_TAGS:
        raise err(
            "TagsLimitExceededException",
            f"The number of tags exceeds the limit of {MAX_TAGS} tags per resource.",
        )
