"""Bucket names, object keys and S3 ARNs.

Bucket naming rules for general purpose buckets:
https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
Object keys: at most 1024 bytes of UTF-8 (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html).
Keys are data, never file paths: the blob store names files by uuid.
"""

from __future__ import annotations

import ipaddress
import re

from services.s3.domain.errors import InvalidArgument, InvalidBucketName, KeyTooLongError

MAX_KEY_BYTES = 1024
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid general purpose bucket name, or None."""
    if not 3 <= len(name) <= 63:
        return "length"
    if not _BUCKET_RE.match(name):
        return "characters"
    if ".." in name or ".-" in name or "-." in name:
        return "adjacent"
    try:
        ipaddress.IPv4Address(name)
        return "ip"
    except ValueError:
        pass
    if name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
        return "reserved"
    return None


def check_bucket_name(name: str) -> None:
    if bucket_name_problem(name) is not None:
        raise InvalidBucketName("The specified bucket is not valid.")


def check_key(key: str) -> None:
    if key == "":
        raise InvalidArgument("Key cannot be empty")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise KeyTooLongError("Your key is too long")


def bucket_arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


def object_arn(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"
