"""Pure domain: ciphertext layout, context encoding, identifiers, the key-state table."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.kms.domain import ciphertext as ct
from services.kms.domain import errors
from services.kms.domain.identifiers import parse_key_ref, validate_alias_name
from services.kms.domain.keys import Key, KeyState, check_state
from services.kms.domain.specs import RSA_OAEP_MAX, SPECS, metadata_algorithms

KID = "1234abcd-12ab-34cd-56ef-1234567890ab"


def test_header_round_trip() -> None:
    h = ct.CiphertextHeader(KID, "ab" * 32, b"\x01" * 12)
    packed = h.pack()
    assert len(packed) == ct.HEADER_LEN and packed[:3] == b"SRK"
    assert ct.CiphertextHeader.parse(packed + b"\x00" * 16) == h


@pytest.mark.parametrize("blob", [b"", b"SRK", b"XXX\x01" + b"\x00" * 100, b"SRK\x02" + b"\x00" * 100])
def test_header_rejects_foreign_blobs(blob: bytes) -> None:
    with pytest.raises(ct.CiphertextFormatError):
        ct.CiphertextHeader.parse(blob)


def test_context_encoding_is_unambiguous() -> None:
    assert ct.encode_context({"a": "bc"}) != ct.encode_context({"ab": "c"})
    assert ct.encode_context({"a": "1", "b": "2"}) == ct.encode_context({"b": "2", "a": "1"})
    assert ct.encode_context({}) != ct.encode_context({"": ""})


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=8)), st.dictionaries(st.text(max_size=8), st.text(max_size=8)))
def test_context_encoding_is_injective(a: dict[str, str], b: dict[str, str]) -> None:
    assert (ct.encode_context(a) == ct.encode_context(b)) == (a == b)


def test_key_refs() -> None:
    assert parse_key_ref(KID, "us-east-1", "111122223333", allow_alias=False).key_id == KID
    arn = f"arn:aws:kms:us-east-1:111122223333:key/{KID}"
    assert parse_key_ref(arn, "us-east-1", "111122223333", allow_alias=False).key_id == KID
    assert parse_key_ref(arn, "eu-west-1", "111122223333", allow_alias=False).foreign
    ref = parse_key_ref("arn:aws:kms:us-east-1:111122223333:alias/x", "us-east-1", "111122223333", allow_alias=True)
    assert ref.alias_name == "alias/x"
    with pytest.raises(errors.NotFoundException, match="Invalid keyId 'alias/x'"):
        parse_key_ref("alias/x", "us-east-1", "111122223333", allow_alias=False)
    with pytest.raises(errors.NotFoundException, match="Invalid keyId 'fake-key-id'"):
        parse_key_ref("fake-key-id", "us-east-1", "111122223333", allow_alias=True)


def test_alias_names() -> None:
    validate_alias_name("alias/ok_name-1/x")
    with pytest.raises(errors.ValidationException, match='Alias must start with the prefix "alias/"'):
        validate_alias_name("bad")
    with pytest.raises(errors.ValidationException, match="regular expression pattern"):
        validate_alias_name("alias/sp ace")
    with pytest.raises(errors.NotAuthorizedException):
        validate_alias_name("alias/aws/s3")
    validate_alias_name("alias/aws/s3", allow_reserved=True)


def _key(state: KeyState) -> Key:
    return Key(key_id=KID, arn=f"arn:aws:kms:us-east-1:111122223333:key/{KID}", account="111122223333",
               region="us-east-1", created=datetime.now(timezone.utc), spec="SYMMETRIC_DEFAULT",
               usage="ENCRYPT_DECRYPT", state=state)


@pytest.mark.parametrize(("state", "op", "error", "message"), [
    (KeyState.DISABLED, "Encrypt", errors.DisabledException, "is disabled."),
    (KeyState.PENDING_DELETION, "Encrypt", errors.KMSInvalidStateException, "is pending deletion."),
    (KeyState.PENDING_IMPORT, "Decrypt", errors.KMSInvalidStateException, "is pending import."),
    (KeyState.PENDING_DELETION, "EnableKey", errors.KMSInvalidStateException, "is pending deletion."),
    (KeyState.ENABLED, "CancelKeyDeletion", errors.KMSInvalidStateException, "is not pending deletion."),
    (KeyState.DISABLED, "CreateGrant", errors.DisabledException, "is disabled."),
])
def test_state_table(state: KeyState, op: str, error: type, message: str) -> None:
    key = _key(state)
    with pytest.raises(error) as info:
        check_state(key, op)
    assert info.value.message == f"{key.arn} {message}"


@pytest.mark.parametrize("op", ["DescribeKey", "GetKeyPolicy", "ListResourceTags", "DeleteAlias"])
def test_read_operations_allowed_in_every_state(op: str) -> None:
    for state in KeyState:
        check_state(_key(state), op)


def test_spec_tables() -> None:
    assert RSA_OAEP_MAX[(2048, "RSAES_OAEP_SHA_1")] == 214 and RSA_OAEP_MAX[(4096, "RSAES_OAEP_SHA_256")] == 446
    assert metadata_algorithms(SPECS["ECC_NIST_P521"], "SIGN_VERIFY") == {"SigningAlgorithms": ["ECDSA_SHA_512"]}
    assert metadata_algorithms(SPECS["HMAC_384"], "GENERATE_VERIFY_MAC") == {"MacAlgorithms": ["HMAC_SHA_384"]}


def test_key_round_trips_through_its_document() -> None:
    key = _key(KeyState.ENABLED).with_(tags=(("a", "b"),), deletion_date=datetime(2024, 1, 1, tzinfo=timezone.utc))
    assert Key.from_doc(key.to_doc()) == key
