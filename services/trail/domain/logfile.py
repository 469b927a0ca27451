"""Where and how a trail writes its files (pure functions).

Log files (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/get-and-view-cloudtrail-log-files.html)::

    [<S3KeyPrefix>/]AWSLogs/<account>/CloudTrail/<region>/<YYYY>/<MM>/<DD>/
        <account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<16 random alphanumerics>.json.gz

holding gzip( ``{"Records":[<record>,<record>,...]}`` ) where each ``<record>`` is the JSON
text the sender produced. Insights events go to ``CloudTrail-Insight`` with the same layout.

Digest files (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-validation-digest-file-structure.html)::

    [<S3KeyPrefix>/]AWSLogs/<account>/CloudTrail-Digest/<region>/<YYYY>/<MM>/<DD>/
        <account>_CloudTrail-Digest_<region>_<trail>_<region>_<YYYYMMDDTHHmmssZ>.json.gz

gzip is written with mtime 0, so the same content always compresses to the same bytes.
"""

from __future__ import annotations

import gzip
import re
import secrets
import string
from collections.abc import Sequence
from datetime import datetime, timezone

_UNIQUE_ALPHABET = string.ascii_letters + string.digits


def unique_suffix() -> str:
    return "".join(secrets.choice(_UNIQUE_ALPHABET) for _ in range(16))


def _utc(when: datetime) -> datetime:
    return when.astimezone(timezone.utc)


def _prefixed(prefix: str, key: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{key}" if prefix else key


def log_file_key(
    *, prefix: str, account_id: str, region: str, when: datetime, unique: str, kind: str = "CloudTrail"
) -> str:
    """``kind`` is ``CloudTrail`` (events) or ``CloudTrail-Insight``."""
    t = _utc(when)
    name = f"{account_id}_{kind}_{region}_{t:%Y%m%dT%H%MZ}_{unique}.json.gz"
    return _prefixed(prefix, f"AWSLogs/{account_id}/{kind}/{region}/{t:%Y/%m/%d}/{name}")


def digest_file_key(*, prefix: str, account_id: str, region: str, trail_name: str, end: datetime) -> str:
    t = _utc(end)
    name = f"{account_id}_CloudTrail-Digest_{region}_{trail_name}_{region}_{t:%Y%m%dT%H%M%SZ}.json.gz"
    return _prefixed(prefix, f"AWSLogs/{account_id}/CloudTrail-Digest/{region}/{t:%Y/%m/%d}/{name}")


def log_prefix(*, prefix: str, account_id: str, region: str, kind: str = "CloudTrail") -> str:
    return _prefixed(prefix, f"AWSLogs/{account_id}/{kind}/{region}/")


def digest_prefix(*, prefix: str, account_id: str, region: str) -> str:
    return _prefixed(prefix, f"AWSLogs/{account_id}/CloudTrail-Digest/{region}/")


def log_file_body(records_json: Sequence[str]) -> bytes:
    """The uncompressed log file: ``{"Records":[...]}`` from the records' JSON texts."""
    return ('{"Records":[' + ",".join(records_json) + "]}").encode()


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def gunzip_bytes(data: bytes) -> bytes:
    return gzip.decompress(data)


def iso(when: datetime) -> str:
    return _utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def key_timestamp(key: str) -> datetime | None:
    """The delivery time encoded in a log (minute) or digest (second) file name."""
    name = key.rsplit("/", 1)[-1]
    if name.endswith(".json.gz"):
        name = name[: -len(".json.gz")]
    for part in reversed(name.split("_")):
        if re.fullmatch(r"\d{8}T\d{6}Z", part):
            return datetime.strptime(part, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        if re.fullmatch(r"\d{8}T\d{4}Z", part):
            return datetime.strptime(part, "%Y%m%dT%H%MZ").replace(tzinfo=timezone.utc)
    return None
