"""aws-chunked request bodies: signed chunks, signed trailers, unsigned trailers."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from botocore.awsrequest import AWSRequest
from botocore.auth import S3SigV4Auth
from botocore.compat import HAS_CRT
from botocore.httpchecksum import (
    AwsChunkedWrapper,
    Crc32Checksum,
    Sha1Checksum,
    Sha256Checksum,
    apply_request_checksum,
)
from multidict import CIMultiDict

from gateway.auth import (
    AuthError,
    AuthResult,
    ChunkedBodyDecoder,
    HttpRequestView,
    PayloadExpectation,
    PayloadMode,
    verify_payload_hash,
)

from .helpers import (
    DOC_AKID,
    DOC_TIME,
    StreamingSeedAuth,
    creds,
    decode_all,
    run,
    sign,
    signed_chunk_body,
    to_view,
)

S3_ENDPOINT = "https://s3.strongroom.test"
SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

# ---------------------------------------------------------------------------
# The worked examples of the AWS documentation: 65,536 + 1,024 bytes of "a"
# https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html
# https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming-trailers.html

DOC_SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
DOC_CHUNK_SIGNATURES = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
]
DOC_TRAILER_SEED = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
DOC_TRAILER_CHUNK_SIGNATURES = [
    "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
    "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
    "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
]
DOC_TRAILER_SIGNATURE = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"


def doc_chunked(trailer: bool, signatures: list[str] | None = None,
                trailer_value: str = "sOO8/Q==") -> tuple[HttpRequestView, bytes]:
    sigs = signatures or (DOC_TRAILER_CHUNK_SIGNATURES if trailer else DOC_CHUNK_SIGNATURES)
    body = (
        b"10000;chunk-signature=" + sigs[0].encode() + b"\r\n" + b"a" * 65536 + b"\r\n"
        + b"400;chunk-signature=" + sigs[1].encode() + b"\r\n" + b"a" * 1024 + b"\r\n"
        + b"0;chunk-signature=" + sigs[2].encode() + b"\r\n"
    )
    headers = CIMultiDict(
        {
            "Host": "s3.amazonaws.com",
            "x-amz-date": "20130524T000000Z",
            "x-amz-storage-class": "REDUCED_REDUNDANCY",
            "Content-Encoding": "aws-chunked",
            "x-amz-decoded-content-length": "66560",
        }
    )
    if trailer:
        body += (
            f"x-amz-checksum-crc32c:{trailer_value}\r\n"
            f"x-amz-trailer-signature:{DOC_TRAILER_SIGNATURE}\r\n\r\n"
        ).encode()
        headers["x-amz-content-sha256"] = SIGNED_TRAILER
        headers["x-amz-trailer"] = "x-amz-checksum-crc32c"
        signed = ("content-encoding;host;x-amz-content-sha256;x-amz-date;"
                  "x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer")
        seed = DOC_TRAILER_SEED
    else:
        body += b"\r\n"
        headers["x-amz-content-sha256"] = SIGNED
        headers["Content-Length"] = "66824"
        signed = ("content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
                  "x-amz-decoded-content-length;x-amz-storage-class")
        seed = DOC_SEED
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={DOC_AKID}/20130524/us-east-1/s3/aws4_request,"
        f"SignedHeaders={signed},Signature={seed}"
    )
    view = HttpRequestView("PUT", "/examplebucket/chunkObject.txt", [], headers,
                           "s3.amazonaws.com", True)
    return view, body


@pytest.mark.parametrize("step", [7, 8192, 1 << 20])
def test_documented_chunked_upload(step: int) -> None:
    view, body = doc_chunked(trailer=False)
    assert len(body) == 66824  # the documented Content-Length
    result = run(view, now=DOC_TIME)
    assert result.payload.mode is PayloadMode.STREAMING_SIGNED
    assert result.payload.seed_signature == DOC_SEED
    data, trailers = decode_all(result, view.headers, body, step)
    assert data == b"a" * 66560 and trailers == {}


def test_documented_chunked_upload_with_signed_trailer() -> None:
    view, body = doc_chunked(trailer=True)
    result = run(view, now=DOC_TIME)
    assert result.payload.mode is PayloadMode.STREAMING_SIGNED_TRAILER
    data, trailers = decode_all(result, view.headers, body)
    assert len(data) == 66560
    assert trailers == {"x-amz-checksum-crc32c": "sOO8/Q=="}


def test_chunks_are_released_only_once_verified() -> None:
    view, body = doc_chunked(trailer=False)
    decoder = ChunkedBodyDecoder(run(view, now=DOC_TIME), view.headers)
    assert decoder.feed(body[:60000]) == []  # chunk 1 still incomplete
    pieces = decoder.feed(body[60000:])
    assert [len(p) for p in pieces] == [65536, 1024]
    assert decoder.finish() == {} and decoder.done and decoder.decoded_length == 66560


@pytest.mark.parametrize("index", [0, 1, 2])
def test_any_wrong_chunk_signature_is_rejected(index: int) -> None:
    signatures = list(DOC_CHUNK_SIGNATURES)
    signatures[index] = signatures[index][::-1]
    view, body = doc_chunked(trailer=False, signatures=signatures)
    result = run(view, now=DOC_TIME)
    with pytest.raises(AuthError) as caught:
        decode_all(result, view.headers, body)
    assert (caught.value.code, caught.value.http_status) == ("SignatureDoesNotMatch", 403)
    assert caught.value.details["StringToSign"].startswith("AWS4-HMAC-SHA256-PAYLOAD\n")


def test_tampered_chunk_data_is_rejected() -> None:
    view, body = doc_chunked(trailer=False)
    tampered = bytearray(body)
    tampered[1000] = ord("b")
    with pytest.raises(AuthError) as caught:
        decode_all(run(view, now=DOC_TIME), view.headers, bytes(tampered))
    assert caught.value.code == "SignatureDoesNotMatch"


def test_reordered_chunks_are_rejected() -> None:
    # Both chunks carry valid signatures, but the chain is broken.
    view, body = doc_chunked(trailer=False)
    first_end = body.index(b"\r\n400;") + 2
    second_end = body.index(b"\r\n0;") + 2
    swapped = body[first_end:second_end] + body[:first_end] + body[second_end:]
    with pytest.raises(AuthError) as caught:
        decode_all(run(view, now=DOC_TIME), view.headers, swapped)
    assert caught.value.code == "SignatureDoesNotMatch"


def test_bad_signed_trailer() -> None:
    view, body = doc_chunked(trailer=True)
    forged = body.replace(DOC_TRAILER_SIGNATURE.encode(), DOC_TRAILER_SIGNATURE[::-1].encode())
    with pytest.raises(AuthError) as caught:
        decode_all(run(view, now=DOC_TIME), view.headers, forged)
    assert caught.value.code == "SignatureDoesNotMatch"
    assert caught.value.details["StringToSign"].startswith("AWS4-HMAC-SHA256-TRAILER\n")
    # A different checksum value breaks the trailer signature before the digest.
    view, body = doc_chunked(trailer=True, trailer_value="AAAAAA==")
    with pytest.raises(AuthError) as caught:
        decode_all(run(view, now=DOC_TIME), view.headers, body)
    assert caught.value.code == "SignatureDoesNotMatch"


def test_truncated_stream_is_incomplete() -> None:
    view, body = doc_chunked(trailer=False)
    result = run(view, now=DOC_TIME)
    for cut in (100, 65600, len(body) - 90):
        decoder = ChunkedBodyDecoder(result, view.headers)
        decoder.feed(body[:cut])
        with pytest.raises(AuthError) as caught:
            decoder.finish()
        assert (caught.value.code, caught.value.http_status) == ("IncompleteBody", 400)


def test_missing_final_crlf_is_tolerated_but_not_trailing_garbage() -> None:
    view, body = doc_chunked(trailer=False)
    result = run(view, now=DOC_TIME)
    data, _ = decode_all(result, view.headers, body[:-2])
    assert len(data) == 66560
    decoder = ChunkedBodyDecoder(result, view.headers)
    decoder.feed(body)
    with pytest.raises(AuthError):
        decoder.feed(b"extra")


def test_decoded_length_must_match() -> None:
    view, body = doc_chunked(trailer=False)
    result = run(view, now=DOC_TIME)
    for declared in ("66561", "100"):
        headers = CIMultiDict(view.headers)
        headers["x-amz-decoded-content-length"] = declared
        with pytest.raises(AuthError) as caught:
            decode_all(result, headers, body)
        assert caught.value.code == "IncompleteBody"
    headers = CIMultiDict(view.headers)
    del headers["x-amz-decoded-content-length"]
    with pytest.raises(AuthError) as caught:
        ChunkedBodyDecoder(result, headers)
    assert (caught.value.code, caught.value.http_status) == ("MissingContentLength", 411)


def test_malformed_chunk_sizes() -> None:
    view, body = doc_chunked(trailer=False)
    result = run(view, now=DOC_TIME)
    for bad in (b"zz;chunk-signature=", b"-1;chunk-signature=", b"10001;chunk-signature="):
        with pytest.raises(AuthError) as caught:
            decode_all(result, view.headers, body.replace(b"10000;chunk-signature=", bad, 1))
        assert caught.value.code == "InvalidChunkSizeError"
    with pytest.raises(AuthError):
        decode_all(result, view.headers, b"1" * 5000)  # no line end at all


def test_not_a_streaming_result() -> None:
    result = AuthResult(True, None, None, None, None, None,
                        PayloadExpectation(PayloadMode.UNSIGNED))
    with pytest.raises(ValueError):
        ChunkedBodyDecoder(result, {})
    view, _ = doc_chunked(trailer=False)
    with pytest.raises(ValueError):
        verify_payload_hash(run(view, now=DOC_TIME), b"")


# ---------------------------------------------------------------------------
# Signed streams produced with botocore's signer (seed + chunk HMACs)


def botocore_signed_stream(
    chunks: list[bytes], *, trailer: dict[str, str] | None = None
) -> tuple[AuthResult, CIMultiDict[str], bytes]:
    mode = SIGNED_TRAILER if trailer is not None else SIGNED
    headers = {
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(sum(map(len, chunks))),
    }
    if trailer is not None:
        headers["X-Amz-Trailer"] = ",".join(trailer)
    request = AWSRequest("PUT", S3_ENDPOINT + "/bucket/big.bin", headers=headers)
    signer = StreamingSeedAuth(creds(), mode)
    sign(signer, request)
    body = signed_chunk_body(signer, request, chunks, trailer=trailer)
    view = to_view(request, is_s3=True)
    return run(view), view.headers, body  # type: ignore[return-value]


def test_botocore_signed_stream_round_trips() -> None:
    chunks = [bytes(range(256)) * 64, b"x" * 9000, b"tail"]
    result, headers, body = botocore_signed_stream(chunks)
    assert result.payload.mode is PayloadMode.STREAMING_SIGNED
    data, trailers = decode_all(result, headers, body, step=1000)
    assert data == b"".join(chunks) and trailers == {}


def test_botocore_signed_stream_with_trailer_and_checksum() -> None:
    chunks = [b"q" * 10000, b"r" * 10]
    checksum = Sha256Checksum()
    checksum.update(b"".join(chunks))
    result, headers, body = botocore_signed_stream(
        chunks, trailer={"x-amz-checksum-sha256": checksum.b64digest()}
    )
    data, trailers = decode_all(result, headers, body)
    assert trailers == {"x-amz-checksum-sha256": checksum.b64digest()}
    # A wrong checksum, correctly signed, is a BadDigest.
    result, headers, body = botocore_signed_stream(
        chunks, trailer={"x-amz-checksum-sha256": Sha256Checksum().b64digest()}
    )
    with pytest.raises(AuthError) as caught:
        decode_all(result, headers, body)
    assert (caught.value.code, caught.value.http_status) == ("BadDigest", 400)
    assert caught.value.message == "The SHA256 you specified did not match the calculated checksum."


def test_small_chunk_before_the_last_is_refused() -> None:
    result, headers, body = botocore_signed_stream([b"a" * 100, b"b" * 9000])
    with pytest.raises(AuthError) as caught:
        decode_all(result, headers, body)
    assert (caught.value.code, caught.value.http_status) == ("InvalidChunkSizeError", 403)
    assert caught.value.message == "Only the last chunk is allowed to have a size less than 8192 bytes"
    assert caught.value.details == {"Chunk": "1", "BadChunkSize": "100"}


def test_stream_signed_with_another_secret_fails_at_the_seed() -> None:
    request = AWSRequest("PUT", S3_ENDPOINT + "/bucket/k",
                         headers={"X-Amz-Decoded-Content-Length": "1"})
    sign(StreamingSeedAuth(creds(secret="nope"), SIGNED), request)
    with pytest.raises(AuthError) as caught:
        run(to_view(request, is_s3=True))
    assert caught.value.code == "SignatureDoesNotMatch"


# ---------------------------------------------------------------------------
# STREAMING-UNSIGNED-PAYLOAD-TRAILER, exactly as botocore sends it


CHECKSUMS: dict[str, tuple[str, Callable[[], object]]] = {
    "crc32": ("x-amz-checksum-crc32", Crc32Checksum),
    "sha1": ("x-amz-checksum-sha1", Sha1Checksum),
    "sha256": ("x-amz-checksum-sha256", Sha256Checksum),
}
if HAS_CRT:  # botocore computes CRC32C / CRC64NVME only with awscrt installed
    from botocore.httpchecksum import CrtCrc32cChecksum, CrtCrc64NvmeChecksum

    CHECKSUMS["crc32c"] = ("x-amz-checksum-crc32c", CrtCrc32cChecksum)
    CHECKSUMS["crc64nvme"] = ("x-amz-checksum-crc64nvme", CrtCrc64NvmeChecksum)


def botocore_unsigned_trailer(
    data: bytes, algorithm: str, *, chunk_size: int = 4096
) -> tuple[AuthResult, CIMultiDict[str], bytes]:
    name, cls = CHECKSUMS[algorithm]
    request_dict = {
        "headers": {},
        "body": data,
        "context": {
            "checksum": {"request_algorithm": {"in": "trailer", "name": name,
                                               "algorithm": algorithm}}
        },
    }
    apply_request_checksum(request_dict)
    wrapper = request_dict["body"]
    assert isinstance(wrapper, AwsChunkedWrapper)
    wrapper._chunk_size = chunk_size
    request = AWSRequest("PUT", S3_ENDPOINT + "/bucket/upload.bin",
                         headers=request_dict["headers"], data=b"")
    request.context.update(request_dict["context"])
    sign(S3SigV4Auth(creds(), "s3", "us-east-1"), request)
    assert request.headers["X-Amz-Content-SHA256"] == UNSIGNED_TRAILER
    view = to_view(request, is_s3=True)
    return run(view), view.headers, wrapper.read()  # type: ignore[return-value]


@pytest.mark.parametrize("algorithm", list(CHECKSUMS))
def test_botocore_unsigned_trailer_is_verified(algorithm: str) -> None:
    data = bytes(range(256)) * 50 + b"end"
    result, headers, body = botocore_unsigned_trailer(data, algorithm)
    assert result.payload.mode is PayloadMode.STREAMING_UNSIGNED_TRAILER
    decoded, trailers = decode_all(result, headers, body, step=999)
    assert decoded == data
    name = CHECKSUMS[algorithm][0]
    checksum = CHECKSUMS[algorithm][1]()
    checksum.update(data)  # type: ignore[attr-defined]
    assert trailers == {name: checksum.b64digest()}  # type: ignore[attr-defined]


@pytest.mark.parametrize("algorithm", list(CHECKSUMS))
def test_bad_trailing_checksum_is_bad_digest(algorithm: str) -> None:
    data = b"payload " * 1000
    result, headers, body = botocore_unsigned_trailer(data, algorithm)
    name = CHECKSUMS[algorithm][0].encode()
    start = body.index(name + b":") + len(name) + 1
    end = body.index(b"\r\n", start)
    value = body[start:end]
    forged = body[:start] + (b"A" if value[:1] != b"A" else b"B") + value[1:] + body[end:]
    with pytest.raises(AuthError) as caught:
        decode_all(result, headers, forged)
    assert (caught.value.code, caught.value.http_status) == ("BadDigest", 400)
    assert algorithm.upper() in caught.value.message


def test_tampered_unsigned_chunk_is_caught_by_the_checksum() -> None:
    data = b"0123456789" * 1000
    result, headers, body = botocore_unsigned_trailer(data, "crc32")
    forged = body.replace(b"0123456789", b"0123456780", 1)
    with pytest.raises(AuthError) as caught:
        decode_all(result, headers, forged)
    assert caught.value.code == "BadDigest"


def test_missing_or_unannounced_trailers() -> None:
    data = b"x" * 100
    result, headers, body = botocore_unsigned_trailer(data, "crc32")
    without = body[: body.index(b"x-amz-checksum-crc32")] + b"\r\n"
    with pytest.raises(AuthError) as caught:
        decode_all(result, headers, without)
    assert caught.value.code == "MalformedTrailerError"
    extra = body[:-2] + b"x-amz-checksum-sha1:AAAA\r\n\r\n"
    with pytest.raises(AuthError) as caught:
        decode_all(result, headers, extra)
    assert caught.value.code == "MalformedTrailerError"
    stripped = CIMultiDict(headers)
    del stripped["x-amz-trailer"]
    with pytest.raises(AuthError) as caught:
        ChunkedBodyDecoder(result, stripped)
    assert caught.value.code == "MalformedTrailerError"
    unknown = CIMultiDict(headers)
    unknown["x-amz-trailer"] = "x-amz-checksum-md7"
    with pytest.raises(AuthError) as caught:
        ChunkedBodyDecoder(result, unknown)
    assert caught.value.code == "InvalidRequest"


def test_empty_body_with_trailer() -> None:
    result, headers, body = botocore_unsigned_trailer(b"", "crc32")
    assert body.startswith(b"0\r\n")
    assert decode_all(result, headers, body) == (b"", {"x-amz-checksum-crc32": "AAAAAA=="})


def test_anonymous_unsigned_trailer_upload_can_be_decoded() -> None:
    data = b"public drop box"
    _, headers, body = botocore_unsigned_trailer(data, "sha1")
    anonymous_headers = CIMultiDict(headers)
    del anonymous_headers["Authorization"]
    view = HttpRequestView("PUT", "/bucket/upload.bin", [], anonymous_headers,
                           anonymous_headers["host"], True)
    result = run(view)
    assert result.anonymous and result.payload.mode is PayloadMode.STREAMING_UNSIGNED_TRAILER
    assert decode_all(result, anonymous_headers, body)[0] == data


def test_body_stream_object_reads_back() -> None:
    # sanity: the wrapper yields the documented framing
    wrapper = AwsChunkedWrapper(io.BytesIO(b"abc"), Crc32Checksum, "x-amz-checksum-crc32", 2)
    assert wrapper.read() == b"2\r\nab\r\n1\r\nc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n"


def test_byte_by_byte_feeding() -> None:
    chunks = [b"k" * 8192, b"tail"]
    checksum = Crc32Checksum()
    checksum.update(b"".join(chunks))
    result, headers, body = botocore_signed_stream(
        chunks, trailer={"x-amz-checksum-crc32": checksum.b64digest()}
    )
    decoder = ChunkedBodyDecoder(result, headers)
    pieces = [piece for i in range(len(body)) for piece in decoder.feed(body[i : i + 1])]
    assert b"".join(pieces) == b"".join(chunks)
    assert decoder.finish() == {"x-amz-checksum-crc32": checksum.b64digest()}
