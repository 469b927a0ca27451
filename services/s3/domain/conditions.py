"""Conditional requests: If-Match / If-None-Match / If-(Un)Modified-Since.

Reads (GetObject, HeadObject, CopyObject's x-amz-copy-source-if-*) follow
https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html : If-Match failing gives
412; If-Match true wins over If-Unmodified-Since false; If-None-Match matching gives 304
(412 for copy sources); If-None-Match false wins over If-Modified-Since true.
Writes (PutObject / CompleteMultipartUpload): ``If-None-Match: *`` fails with 412 when the
key exists; ``If-Match`` fails with 404 NoSuchKey when it does not and 412 on a mismatch.
"""

from __future__ import annotations

from datetime import datetime

from services.s3.domain.errors import NotModified, PreconditionFailed, no_such_key


def _etags(header: str) -> list[str]:
    return [t.strip().removeprefix("W/").strip('"') for t in header.split(",") if t.strip()]


def etag_matches(header: str, etag: str) -> bool:
    want = etag.strip('"')
    return any(t == "*" or t == want for t in _etags(header))


def _precondition() -> PreconditionFailed:
    return PreconditionFailed("At least one of the pre-conditions you specified did not hold")


def check_read(*, etag: str, last_modified: datetime, if_match: str | None,
               if_none_match: str | None, if_modified_since: datetime | None,
               if_unmodified_since: datetime | None, copy_source: bool = False) -> None:
    lm = last_modified.replace(microsecond=0)
    if if_match is not None:
        if not etag_matches(if_match, etag):
            raise _precondition()
    elif if_unmodified_since is not None and lm > if_unmodified_since:
        raise _precondition()
    if if_none_match is not None:
        if etag_matches(if_none_match, etag):
            if copy_source:
                raise _precondition()
            raise NotModified("Not Modified")
    elif if_modified_since is not None and lm <= if_modified_since:
        if copy_source:
            raise _precondition()
        raise NotModified("Not Modified")


def check_write(*, existing_etag: str | None, if_match: str | None, if_none_match: str | None) -> None:
    if if_none_match is not None:
        if if_none_match.strip() != "*":
            from services.s3.domain.errors import NotImplementedError_
            raise NotImplementedError_("A header you provided implies functionality that is not implemented")
        if existing_etag is not None:
            raise _precondition()
    if if_match is not None:
        if existing_etag is None:
            raise no_such_key()
        if not etag_matches(if_match, existing_etag):
            raise _precondition()
