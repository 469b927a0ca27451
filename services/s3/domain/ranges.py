"""HTTP Range for GetObject, as S3 reads it (one range of bytes; RFC 9110 section 14).

S3 honours a single ``bytes=`` range; a header it cannot parse, or one with several ranges,
is ignored (the whole object is returned). A syntactically valid range that does not overlap
the object is ``416 InvalidRange``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.s3.domain.errors import InvalidRange

_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


def _unsatisfiable(header: str, size: int) -> InvalidRange:
    # S3 names the range and the object's size in the error body (SDKs retry without it).
    return InvalidRange("The requested range is not satisfiable",
                        details={"RangeRequested": header.strip(), "ActualObjectSize": str(size)})


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range to return, None for the whole object; raises InvalidRange (416)."""
    if not header:
        return None
    m = _RANGE_RE.match(header.strip())
    if not m:
        return None
    first, last = m.group(1), m.group(2)
    if first == "" and last == "":
        return None
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise _unsatisfiable(header, size)
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    end = int(last) if last != "" else size - 1
    if last != "" and end < start:
        return None
    if start >= size:
        raise _unsatisfiable(header, size)
    return ByteRange(start, min(end, size - 1))
