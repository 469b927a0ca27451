"""Incremental decoder for ``Content-Encoding: aws-chunked`` request bodies.

Wire format (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html,
https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming-trailers.html)::

    STREAMING-AWS4-HMAC-SHA256-PAYLOAD
        hex(size);chunk-signature=<sig>\\r\\n <size bytes> \\r\\n     (repeated)
        0;chunk-signature=<sig>\\r\\n \\r\\n

    STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER
        ... same chunks ..., 0;chunk-signature=<sig>\\r\\n
        x-amz-checksum-crc32c:sOO8/Q==\\r\\n
        x-amz-trailer-signature:<sig>\\r\\n
        \\r\\n

    STREAMING-UNSIGNED-PAYLOAD-TRAILER
        hex(size)\\r\\n <size bytes> \\r\\n                               (repeated)
        0\\r\\n
        x-amz-checksum-crc32:AAAAAA==\\r\\n
        \\r\\n

Chunk signatures chain from the seed signature (the request's own
signature)::

    StringToSign = "AWS4-HMAC-SHA256-PAYLOAD" \\n  X-Amz-Date \\n  scope \\n
                   previous-signature \\n  hex(SHA256("")) \\n  hex(SHA256(chunk-data))

and the trailer signature chains from the final (empty) chunk's signature::

    StringToSign = "AWS4-HMAC-SHA256-TRAILER" \\n  X-Amz-Date \\n  scope \\n
                   previous-signature \\n  hex(SHA256("name:value\\n" per trailing header))

Every non-final data chunk of a signed stream must be at least 8 KiB
(``InvalidChunkSizeError``).  ``x-amz-decoded-content-length`` is mandatory
and checked against the decoded size; a checksum announced in
``x-amz-trailer`` must arrive in the trailer and match the decoded data
(``BadDigest`` otherwise).

Signed streams release each chunk only after its signature verified.  For
``STREAMING-UNSIGNED-PAYLOAD-TRAILER`` data is released as it arrives and is
only vouched for by the trailing checksum: treat it as provisional until
:meth:`ChunkedBodyDecoder.finish` returns.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Final

from . import errors
from .canonical import EMPTY_SHA256
from .checksums import CHECKSUM_ALGORITHMS, Checksum
from .errors import AuthError
from .models import AuthResult, PayloadMode

__all__ = ["ChunkedBodyDecoder", "MIN_CHUNK_SIZE"]

MIN_CHUNK_SIZE: Final = 8192
_MAX_LINE: Final = 4096
_MAX_TRAILER_BYTES: Final = 16384
_HEXDIGITS: Final = frozenset(b"0123456789abcdefABCDEF")
_SIGNATURE_PREFIX: Final = b"chunk-signature="

_SIZE, _DATA, _DATA_CRLF, _TRAILER, _FINAL_CRLF, _DONE = range(6)


class ChunkedBodyDecoder:
    """Feed raw aws-chunked bytes, get the decoded payload back piece by piece."""

    def __init__(
        self,
        result: AuthResult,
        headers: Mapping[str, str],
        *,
        max_chunk_size: int = 16 * 1024 * 1024,
    ) -> None:
        payload = result.payload
        if not payload.is_streaming:
            raise ValueError(f"payload mode {payload.mode.value} is not aws-chunked")
        self._s3 = payload.is_s3
        self._signed = payload.mode in (
            PayloadMode.STREAMING_SIGNED,
            PayloadMode.STREAMING_SIGNED_TRAILER,
        )
        self._signed_trailer = payload.mode is PayloadMode.STREAMING_SIGNED_TRAILER
        self._has_trailer = payload.mode is not PayloadMode.STREAMING_SIGNED
        self._max_chunk = max_chunk_size
        if self._signed:
            if payload.signing_key is None or payload.seed_signature is None:
                raise ValueError("signed streaming payload without signing material")
            self._key: bytes = payload.signing_key
            self._previous: str = payload.seed_signature
            self._chunk_prefix = (
                f"AWS4-HMAC-SHA256-PAYLOAD\n{payload.amz_date}\n{payload.scope}\n"
            )
            self._trailer_prefix = (
                f"AWS4-HMAC-SHA256-TRAILER\n{payload.amz_date}\n{payload.scope}\n"
            )

        declared = headers.get("x-amz-decoded-content-length")
        if declared is None:
            raise errors.missing_decoded_length()
        declared = declared.strip()
        if not declared.isascii() or not declared.isdigit():
            raise AuthError(
                "InvalidArgument",
                "x-amz-decoded-content-length must be a non-negative integer",
                400,
                {"ArgumentName": "x-amz-decoded-content-length", "ArgumentValue": declared},
            )
        self._expected_length = int(declared)

        self._checksums: dict[str, tuple[str, Checksum]] = {}
        self._declared_trailers: set[str] = set()
        trailer_header = headers.get("x-amz-trailer")
        if self._has_trailer:
            if trailer_header is None:
                raise errors.malformed_trailer("x-amz-trailer header is required")
            for name in trailer_header.split(","):
                name = name.strip().lower()
                if not name:
                    continue
                self._declared_trailers.add(name)
                if name.startswith("x-amz-checksum-"):
                    algorithm = CHECKSUM_ALGORITHMS.get(name[len("x-amz-checksum-") :])
                    if algorithm is None:
                        raise AuthError(
                            "InvalidRequest",
                            "The value specified in the x-amz-trailer header is not supported",
                            400,
                        )
                    self._checksums[name] = (algorithm[0], algorithm[1]())

        self._buf = bytearray()
        self._state = _SIZE
        self._remaining = 0
        self._decoded = 0
        self._chunk_number = 0
        self._small_chunk: tuple[int, int] | None = None
        self._chunk_signature = ""
        self._chunk_hash = hashlib.sha256()
        self._chunk_parts: list[bytes] = []
        self._trailers: dict[str, str] = {}
        self._trailer_canonical: list[str] = []
        self._trailer_bytes = 0
        self._trailer_signature_seen = False

    # ------------------------------------------------------------------
    @property
    def decoded_length(self) -> int:
        return self._decoded

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Consume raw bytes; return the decoded payload pieces now available."""
        if data and self._state == _DONE:
            raise errors.malformed_chunk("data after the end of the aws-chunked body")
        if self._buf:  # an incomplete header line / CRLF from the previous call
            raw = bytes(self._buf) + bytes(data)
            self._buf = bytearray()
        else:
            raw = data if isinstance(data, bytes) else bytes(data)
        view = memoryview(raw)
        size = len(raw)
        pos = 0
        out: list[bytes] = []
        while True:
            state = self._state
            if state == _DATA:
                if pos >= size:
                    break
                take = min(self._remaining, size - pos)
                piece = view[pos : pos + take]
                pos += take
                self._remaining -= take
                self._decoded += take
                if self._decoded > self._expected_length:
                    raise errors.incomplete_body(
                        "more data than x-amz-decoded-content-length announced"
                    )
                for _, checksum in self._checksums.values():
                    checksum.update(piece)
                if self._signed:
                    self._chunk_hash.update(piece)
                    self._chunk_parts.append(bytes(piece))
                else:
                    out.append(bytes(piece))
                if self._remaining:
                    break
                self._state = _DATA_CRLF
            elif state == _DATA_CRLF or state == _FINAL_CRLF:
                if size - pos < 2:
                    break
                if raw[pos : pos + 2] != b"\r\n":
                    raise errors.malformed_chunk(
                        f"chunk {self._chunk_number} is longer than its declared size"
                        if state == _DATA_CRLF
                        else "data after the final chunk"
                    )
                pos += 2
                if state == _FINAL_CRLF:
                    self._state = _DONE
                    continue
                if self._signed:
                    self._verify_chunk(self._chunk_hash.hexdigest())
                    out.append(b"".join(self._chunk_parts))
                    self._chunk_parts = []
                self._state = _SIZE
            elif state == _SIZE or state == _TRAILER:
                index = raw.find(b"\r\n", pos, pos + _MAX_LINE + 2)
                if index < 0:
                    if size - pos > _MAX_LINE:
                        raise errors.malformed_chunk("chunk header line too long")
                    break
                line = bytes(raw[pos:index])
                pos = index + 2
                if state == _SIZE:
                    self._start_chunk(line)
                else:
                    self._trailer_line(line)
            else:  # _DONE
                if pos < size:
                    raise errors.malformed_chunk("data after the end of the aws-chunked body")
                break
        if pos < size:
            self._buf = bytearray(view[pos:])
        view.release()
        return out

    def finish(self) -> dict[str, str]:
        """Declare end of input; return the trailing headers (lower-case names)."""
        if self._state == _FINAL_CRLF and not self._buf:
            self._state = _DONE  # the closing CRLF is optional
        if self._state != _DONE:
            raise errors.incomplete_body("the aws-chunked body ended before its final chunk")
        if self._decoded != self._expected_length:
            raise errors.incomplete_body(
                f"decoded {self._decoded} bytes, x-amz-decoded-content-length is "
                f"{self._expected_length}"
            )
        return dict(self._trailers)

    # ------------------------------------------------------------------
    def _start_chunk(self, line: bytes) -> None:
        size_part, _, extension = line.partition(b";")
        size_part = size_part.strip()
        if not size_part or len(size_part) > 16 or not _HEXDIGITS.issuperset(size_part):
            raise errors.malformed_chunk(f"invalid chunk size {size_part[:32]!r}")
        size = int(size_part, 16)
        self._chunk_number += 1
        if size > self._max_chunk:
            raise errors.malformed_chunk(
                f"chunk {self._chunk_number} of {size} bytes exceeds the {self._max_chunk} limit"
            )
        if self._signed:
            extension = extension.strip()
            if not extension.startswith(_SIGNATURE_PREFIX):
                raise errors.chunk_signature_mismatch(
                    self._s3, string_to_sign="", signature_provided=""
                )
            self._chunk_signature = extension[len(_SIGNATURE_PREFIX) :].decode(
                "ascii", "replace"
            )
            if size:
                if self._small_chunk is not None:
                    raise errors.invalid_chunk_size(*self._small_chunk)
                if size < MIN_CHUNK_SIZE:
                    self._small_chunk = (self._chunk_number, size)
        if size:
            self._remaining = size
            self._chunk_hash = hashlib.sha256()
            self._state = _DATA
            return
        # final, empty chunk
        if self._signed:
            self._verify_chunk(EMPTY_SHA256)
        self._state = _TRAILER if self._has_trailer else _FINAL_CRLF

    def _verify_chunk(self, data_hash: str) -> None:
        string_to_sign = f"{self._chunk_prefix}{self._previous}\n{EMPTY_SHA256}\n{data_hash}"
        computed = hmac.digest(self._key, string_to_sign.encode("utf-8"), "sha256").hex()
        provided = self._chunk_signature
        if not (provided.isascii() and hmac.compare_digest(computed, provided)):
            raise errors.chunk_signature_mismatch(
                self._s3, string_to_sign=string_to_sign, signature_provided=provided
            )
        self._previous = computed

    def _trailer_line(self, line: bytes) -> None:
        self._trailer_bytes += len(line) + 2
        if self._trailer_bytes > _MAX_TRAILER_BYTES:
            raise errors.malformed_trailer("trailer too large")
        if not line:
            self._end_of_trailer()
            return
        name_b, colon, value_b = line.partition(b":")
        if not colon:
            raise errors.malformed_trailer("trailing header without ':'")
        try:
            name = name_b.strip().decode("ascii").lower()
            value = value_b.strip().decode("utf-8")
        except UnicodeDecodeError:
            raise errors.malformed_trailer("trailing header is not text") from None
        if name == "x-amz-trailer-signature":
            if not self._signed_trailer:
                raise errors.malformed_trailer("unexpected x-amz-trailer-signature")
            self._verify_trailer_signature(value)
            return
        if self._trailer_signature_seen:
            raise errors.malformed_trailer("trailing header after x-amz-trailer-signature")
        if name not in self._declared_trailers:
            raise errors.malformed_trailer(f"{name} was not announced in x-amz-trailer")
        if name in self._trailers:
            raise errors.malformed_trailer(f"{name} sent twice")
        self._trailers[name] = value
        self._trailer_canonical.append(f"{name}:{value}\n")

    def _verify_trailer_signature(self, provided: str) -> None:
        canonical = "".join(self._trailer_canonical).encode("utf-8")
        string_to_sign = (
            f"{self._trailer_prefix}{self._previous}\n{hashlib.sha256(canonical).hexdigest()}"
        )
        computed = hmac.digest(self._key, string_to_sign.encode("utf-8"), "sha256").hex()
        if not (provided.isascii() and hmac.compare_digest(computed, provided)):
            raise errors.chunk_signature_mismatch(
                self._s3, string_to_sign=string_to_sign, signature_provided=provided
            )
        self._previous = computed
        self._trailer_signature_seen = True

    def _end_of_trailer(self) -> None:
        if self._signed_trailer and not self._trailer_signature_seen:
            raise errors.chunk_signature_mismatch(
                self._s3, string_to_sign="", signature_provided=""
            )
        for name in self._declared_trailers:
            if name not in self._trailers:
                raise errors.malformed_trailer(f"announced trailer {name} is missing")
        for name, (display, checksum) in self._checksums.items():
            if checksum.b64digest() != self._trailers[name]:
                raise errors.bad_digest(display)
        self._state = _DONE
