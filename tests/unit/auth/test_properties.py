"""Property tests: whatever botocore signs, the verifier accepts (and no more)."""

from __future__ import annotations

import hashlib
from typing import Literal

from botocore.auth import HmacV1Auth, S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.utils import percent_encode, percent_encode_sequence
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.auth import parse_query
from gateway.auth.canonical import uri_encode

from .helpers import FixedHmacV1Auth, creds, fails, replace_view, run, sign, to_view

_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
text = st.text(
    alphabet=st.characters(blacklist_categories=_SURROGATES, blacklist_characters="\x00"),
    max_size=12,
)
keys = st.lists(text.filter(lambda s: s not in ("", ".", "..")), min_size=1, max_size=4).map(
    "/".join
)
header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20
)
params = st.dictionaries(
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1,
            max_size=8).filter(lambda k: not k.startswith("X-Amz-") and k not in (
                "AWSAccessKeyId", "Signature")),
    text,
    max_size=4,
)
SETTINGS = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(key=keys, query=params, meta=header_values, body=st.binary(max_size=64))
def test_any_s3_request_botocore_signs_is_accepted(
    key: str, query: dict[str, str], meta: str, body: bytes
) -> None:
    # Query serialised into the URL, as botocore's serialisers do.
    url = "https://s3.strongroom.test/bucket/" + percent_encode(key, safe="/~")
    if query:
        url += "?" + percent_encode_sequence(query)
    request = AWSRequest("PUT", url, headers={"x-amz-meta-v": meta}, data=body)
    sign(S3SigV4Auth(creds(), "s3", "us-east-1"), request)
    view = to_view(request, is_s3=True)
    run(view)
    # Decoding with parse_query (what the gateway is told to use) works as well.
    raw_query = request.prepare().url.partition("?")[2]
    run(replace_view(view, query=parse_query(raw_query)))
    # And the request is not accepted for another key.
    assert fails(replace_view(view, raw_path=view.raw_path + "x")).code == (
        "SignatureDoesNotMatch"
    )


@SETTINGS
@given(key=keys, query=params, body=st.binary(max_size=64))
def test_any_json_service_request_botocore_signs_is_accepted(
    key: str, query: dict[str, str], body: bytes
) -> None:
    url = "https://kms.us-east-1.strongroom.test/" + percent_encode(key, safe="/~")
    if query:
        url += "?" + percent_encode_sequence(query)
    request = AWSRequest("POST", url, data=body)
    sign(SigV4Auth(creds(), "kms", "us-east-1"), request)
    view = to_view(request, is_s3=False)
    run(view, body=body)
    assert fails(view, body=body + b"!").code == "InvalidSignatureException"


@SETTINGS
@given(key=keys, meta=header_values, sub=st.sampled_from(["acl", "versionId", "tagging"]),
       value=text)
def test_any_sigv2_request_botocore_signs_is_accepted(
    key: str, meta: str, sub: str, value: str
) -> None:
    query = percent_encode_sequence({sub: value}) if value else sub
    url = "https://s3.strongroom.test/bucket/" + percent_encode(key, safe="/~") + "?" + query
    request = AWSRequest("GET", url, headers={"x-amz-meta-v": meta})
    FixedHmacV1Auth(creds()).add_auth(request)
    assert isinstance(FixedHmacV1Auth(creds()), HmacV1Auth)
    run(to_view(request, is_s3=True))


@settings(max_examples=100, deadline=None)
@given(value=st.text(max_size=20))
def test_uri_encode_matches_botocore(value: str) -> None:
    assert uri_encode(value) == percent_encode(value, safe="~")
    assert hashlib.sha256(uri_encode(value).encode()).digest()  # ascii-only output
