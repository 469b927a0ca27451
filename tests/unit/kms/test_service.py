"""Use cases over the fake HSM and a temporary SQLite store (no processes, no network)."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from common.errors import AwsError
from services.kms.domain.ciphertext import HEADER_LEN
from services.kms.service import KmsService
from tests.unit.kms.conftest import ACCOUNT, REGION, ROOT, Clock, call, user


async def err(kms: KmsService, op: str, caller=ROOT, **params) -> tuple[str, str]:
    with pytest.raises(AwsError) as info:
        await kms.dispatch(op, caller, params)
    return info.value.code, info.value.message


async def new_key(kms: KmsService, **params) -> dict:
    return (await call(kms, "CreateKey", **params))["KeyMetadata"]


ALLOW_ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]})


async def test_create_describe_defaults(kms: KmsService) -> None:
    md = await new_key(kms)
    assert md["KeyState"] == "Enabled" and md["Enabled"] is True and md["KeyManager"] == "CUSTOMER"
    assert md["Arn"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{md['KeyId']}"
    policy = json.loads((await call(kms, "GetKeyPolicy", KeyId=md["KeyId"], PolicyName="default"))["Policy"])
    assert policy["Statement"][0]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert (await call(kms, "ListKeyPolicies", KeyId=md["KeyId"]))["PolicyNames"] == ["default"]


async def test_encrypt_decrypt_context_and_tampering(kms: KmsService) -> None:
    k1, k2 = await new_key(kms), await new_key(kms)
    blob = (await call(kms, "Encrypt", KeyId=k1["KeyId"], Plaintext=b"p", EncryptionContext={"a": "bc"}))["CiphertextBlob"]
    assert (await call(kms, "Decrypt", CiphertextBlob=blob, EncryptionContext={"a": "bc"}))["Plaintext"] == b"p"
    assert await err(kms, "Decrypt", CiphertextBlob=blob, EncryptionContext={"ab": "c"}) == ("InvalidCiphertextException", "")
    assert await err(kms, "Decrypt", CiphertextBlob=blob) == ("InvalidCiphertextException", "")
    for i in (5, 30, HEADER_LEN + 1, len(blob) - 1):
        bad = bytearray(blob)
        bad[i] ^= 1
        assert (await err(kms, "Decrypt", CiphertextBlob=bytes(bad), EncryptionContext={"a": "bc"}))[0] in (
            "InvalidCiphertextException",)
    assert await err(kms, "Decrypt", CiphertextBlob=blob, KeyId=k2["KeyId"], EncryptionContext={"a": "bc"}) == (
        "IncorrectKeyException", "The key ID in the request does not identify a CMK that can perform this operation.")


async def test_reencrypt_and_data_keys(kms: KmsService) -> None:
    k1, k2 = await new_key(kms), await new_key(kms)
    gdk = await call(kms, "GenerateDataKey", KeyId=k1["KeyId"], KeySpec="AES_256", EncryptionContext={"x": "y"})
    assert len(gdk["Plaintext"]) == 32
    re = await call(kms, "ReEncrypt", CiphertextBlob=gdk["CiphertextBlob"], SourceEncryptionContext={"x": "y"},
                    DestinationKeyId=k2["Arn"])
    assert re["SourceKeyId"] == k1["Arn"] and re["KeyId"] == k2["Arn"]
    out = await call(kms, "Decrypt", CiphertextBlob=re["CiphertextBlob"])
    assert out["Plaintext"] == gdk["Plaintext"] and out["KeyId"] == k2["Arn"]
    wo = await call(kms, "GenerateDataKeyWithoutPlaintext", KeyId=k1["KeyId"], NumberOfBytes=64)
    assert "Plaintext" not in wo and len((await call(kms, "Decrypt", CiphertextBlob=wo["CiphertextBlob"]))["Plaintext"]) == 64
    assert await err(kms, "GenerateDataKey", KeyId=k1["KeyId"]) == (
        "ValidationException", "Please specify either number of bytes or key spec.")
    assert await err(kms, "GenerateRandom", NumberOfBytes=1025) == (
        "ValidationException", "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy "
        "constraint: Member must have value less than or equal to 1024")
    assert len((await call(kms, "GenerateRandom", NumberOfBytes=12))["Plaintext"]) == 12


async def test_states_deletion_and_scheduler(kms: KmsService, clock: Clock) -> None:
    md = await new_key(kms)
    kid, arn = md["KeyId"], md["Arn"]
    await call(kms, "DisableKey", KeyId=kid)
    assert await err(kms, "Encrypt", KeyId=kid, Plaintext=b"x") == ("DisabledException", f"{arn} is disabled.")
    await call(kms, "EnableKey", KeyId=kid)
    assert await err(kms, "ScheduleKeyDeletion", KeyId=kid, PendingWindowInDays=6) == (
        "ValidationException", "1 validation error detected: Value '6' at 'pendingWindowInDays' failed to satisfy "
        "constraint: Member must have value greater than or equal to 7")
    out = await call(kms, "ScheduleKeyDeletion", KeyId=kid, PendingWindowInDays=7)
    assert out["KeyState"] == "PendingDeletion" and out["PendingWindowInDays"] == 7
    assert await err(kms, "Encrypt", KeyId=kid, Plaintext=b"x") == (
        "KMSInvalidStateException", f"{arn} is pending deletion.")
    await call(kms, "CancelKeyDeletion", KeyId=kid)
    assert (await call(kms, "DescribeKey", KeyId=kid))["KeyMetadata"]["KeyState"] == "Disabled"
    await call(kms, "ScheduleKeyDeletion", KeyId=kid, PendingWindowInDays=7)
    labels = [m.hsm_label for m in kms.materials[kid].values()]
    clock.advance(days=6)
    await kms.run_due_tasks()
    assert kid in kms.keys
    clock.advance(days=1, seconds=1)
    await kms.run_due_tasks()
    assert kid not in kms.keys and all(label not in kms.hsm.objects for label in labels)
    assert kms.sink.events[-1]["eventName"] == "DeleteKey" and kms.sink.events[-1]["eventType"] == "AwsServiceEvent"
    assert await err(kms, "DescribeKey", KeyId=kid) == ("NotFoundException", f"Key '{arn}' does not exist")


async def test_aliases(kms: KmsService) -> None:
    k1, k2 = await new_key(kms), await new_key(kms)
    hmac_key = await new_key(kms, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    await call(kms, "CreateAlias", AliasName="alias/app", TargetKeyId=k1["KeyId"])
    assert await err(kms, "CreateAlias", AliasName="alias/app", TargetKeyId=k2["KeyId"]) == (
        "AlreadyExistsException", f"An alias with the name arn:aws:kms:{REGION}:{ACCOUNT}:alias/app already exists")
    assert (await err(kms, "CreateAlias", AliasName="alias/aws/mine", TargetKeyId=k2["KeyId"]))[0] == "NotAuthorizedException"
    blob = (await call(kms, "Encrypt", KeyId="alias/app", Plaintext=b"a"))["CiphertextBlob"]
    await call(kms, "UpdateAlias", AliasName="alias/app", TargetKeyId=k2["KeyId"])
    assert (await call(kms, "DescribeKey", KeyId=f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/app"))["KeyMetadata"]["KeyId"] == k2["KeyId"]
    assert (await call(kms, "Decrypt", CiphertextBlob=blob))["Plaintext"] == b"a"
    assert (await err(kms, "UpdateAlias", AliasName="alias/app", TargetKeyId=hmac_key["KeyId"]))[0] == "ValidationException"
    listed = await call(kms, "ListAliases", KeyId=k2["KeyId"])
    assert [a["AliasName"] for a in listed["Aliases"]] == ["alias/app"]
    every = await call(kms, "ListAliases")
    assert any(a["AliasName"] == "alias/aws/s3" and "TargetKeyId" not in a for a in every["Aliases"])
    page = await call(kms, "ListAliases", Limit=2)
    assert page["Truncated"] is True and len(page["Aliases"]) == 2
    rest = await call(kms, "ListAliases", Marker=page["NextMarker"], Limit=100)
    assert rest["Aliases"][0]["AliasName"] > page["Aliases"][-1]["AliasName"]
    await call(kms, "DeleteAlias", AliasName="alias/app")
    assert await err(kms, "DescribeKey", KeyId="alias/app") == (
        "NotFoundException", f"Alias 'arn:aws:kms:{REGION}:{ACCOUNT}:alias/app' is not found.")


async def test_key_policy_and_identity_policies(kms: KmsService) -> None:
    md = await new_key(kms)
    alice = user("alice")
    assert await err(kms, "Encrypt", alice, KeyId=md["KeyId"], Plaintext=b"x") == (
        "AccessDeniedException", f"User: arn:aws:iam::{ACCOUNT}:user/alice is not authorized to perform: kms:Encrypt "
        f"on resource: {md['Arn']} because no identity-based policy allows the kms:Encrypt action")
    await call(kms, "Encrypt", user("alice", ALLOW_ALL), KeyId=md["KeyId"], Plaintext=b"x")
    # A key policy without the root statement: IAM policies no longer count; the named user does.
    policy = {"Version": "2012-10-17", "Statement": [
        {"Sid": "admin", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
         "Action": ["kms:PutKeyPolicy", "kms:GetKeyPolicy", "kms:DescribeKey"], "Resource": "*"},
        {"Sid": "user", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"},
         "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"}]}
    await call(kms, "PutKeyPolicy", KeyId=md["KeyId"], PolicyName="default", Policy=json.dumps(policy))
    blob = (await call(kms, "Encrypt", alice, KeyId=md["KeyId"], Plaintext=b"x"))["CiphertextBlob"]
    assert (await err(kms, "Encrypt", user("bob", ALLOW_ALL), KeyId=md["KeyId"], Plaintext=b"x")) == (
        "AccessDeniedException", f"User: arn:aws:iam::{ACCOUNT}:user/bob is not authorized to perform: kms:Encrypt "
        f"on resource: {md['Arn']} because no resource-based policy allows the kms:Encrypt action")
    # Remove the user: denied on the next request; re-add: allowed again.
    policy["Statement"] = policy["Statement"][:1]
    await call(kms, "PutKeyPolicy", KeyId=md["KeyId"], Policy=json.dumps(policy))
    assert (await err(kms, "Decrypt", alice, CiphertextBlob=blob))[0] == "AccessDeniedException"
    policy["Statement"].append({"Sid": "user", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"},
                                "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"})
    await call(kms, "PutKeyPolicy", KeyId=md["KeyId"], Policy=json.dumps(policy))
    assert (await call(kms, "Decrypt", alice, CiphertextBlob=blob))["Plaintext"] == b"x"
    # Explicit deny with a condition on the encryption context
    policy["Statement"].append({"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:Encrypt", "Resource": "*",
                                "Condition": {"StringEquals": {"kms:EncryptionContext:env": "prod"}}})
    await call(kms, "PutKeyPolicy", KeyId=md["KeyId"], Policy=json.dumps(policy))
    code, message = await err(kms, "Encrypt", alice, KeyId=md["KeyId"], Plaintext=b"x", EncryptionContext={"env": "prod"})
    assert code == "AccessDeniedException" and message.endswith("with an explicit deny in a resource-based policy")
    await call(kms, "Encrypt", alice, KeyId=md["KeyId"], Plaintext=b"x", EncryptionContext={"env": "dev"})
    # Lockout safety check and malformed documents
    assert await err(kms, "PutKeyPolicy", KeyId=md["KeyId"], Policy=json.dumps(
        {"Version": "2012-10-17", "Statement": [policy["Statement"][1]]})) == (
        "MalformedPolicyDocumentException", "The new key policy will not allow you to update the key policy in the future.")
    assert (await err(kms, "PutKeyPolicy", KeyId=md["KeyId"], Policy="{not json"))[0] == "MalformedPolicyDocumentException"


async def test_condition_keys_via_service_and_tags(kms: KmsService) -> None:
    md = await new_key(kms, Tags=[{"TagKey": "Project", "TagValue": "Alpha"}])
    ident = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",
        "Condition": {"StringEquals": {"aws:ResourceTag/Project": "Alpha", "kms:ViaService": "s3.us-east-1.amazonaws.com"}}}]})
    blob = (await call(kms, "Encrypt", KeyId=md["KeyId"], Plaintext=b"x"))["CiphertextBlob"]
    carol = user("carol", ident)
    assert (await err(kms, "Decrypt", carol, CiphertextBlob=blob))[0] == "AccessDeniedException"
    via_s3 = user("carol", ident)
    via_s3.invoked_by, via_s3.via_service = "s3.amazonaws.com", "s3.us-east-1.amazonaws.com"
    assert (await call(kms, "Decrypt", via_s3, CiphertextBlob=blob))["Plaintext"] == b"x"
    event = kms.sink.events[-1]
    assert event["userIdentity"]["invokedBy"] == "s3.amazonaws.com" and event["sourceIPAddress"] == "s3.amazonaws.com"
    await call(kms, "TagResource", KeyId=md["KeyId"], Tags=[{"TagKey": "Project", "TagValue": "Beta"}])
    assert (await err(kms, "Decrypt", via_s3, CiphertextBlob=blob))[0] == "AccessDeniedException"
    tags = await call(kms, "ListResourceTags", KeyId=md["KeyId"])
    assert tags["Tags"] == [{"TagKey": "Project", "TagValue": "Beta"}] and tags["Truncated"] is False
    await call(kms, "UntagResource", KeyId=md["KeyId"], TagKeys=["Project"])
    assert (await call(kms, "ListResourceTags", KeyId=md["KeyId"]))["Tags"] == []
    assert (await err(kms, "TagResource", KeyId=md["KeyId"], Tags=[{"TagKey": "aws:x", "TagValue": "y"}]))[0] == "TagException"


async def test_grants_with_constraints(kms: KmsService) -> None:
    md = await new_key(kms)
    dave = user("dave")
    grant = await call(kms, "CreateGrant", KeyId=md["KeyId"], GranteePrincipal=dave.principal_arn,
                       RetiringPrincipal=f"arn:aws:iam::{ACCOUNT}:user/ret", Operations=["Encrypt", "Decrypt"],
                       Constraints={"EncryptionContextSubset": {"dept": "it"}})
    assert len(grant["GrantId"]) == 64 and grant["GrantToken"]
    blob = (await call(kms, "Encrypt", dave, KeyId=md["KeyId"], Plaintext=b"g",
                       EncryptionContext={"dept": "it", "x": "1"}, GrantTokens=[grant["GrantToken"]]))["CiphertextBlob"]
    assert (await err(kms, "Encrypt", dave, KeyId=md["KeyId"], Plaintext=b"g"))[0] == "AccessDeniedException"
    assert (await err(kms, "GenerateDataKey", dave, KeyId=md["KeyId"], NumberOfBytes=8,
                      EncryptionContext={"dept": "it"}))[0] == "AccessDeniedException"
    listed = await call(kms, "ListGrants", KeyId=md["KeyId"])
    assert listed["Grants"][0]["Constraints"] == {"EncryptionContextSubset": {"dept": "it"}}
    assert (await call(kms, "ListRetirableGrants", RetiringPrincipal=f"arn:aws:iam::{ACCOUNT}:user/ret"))["Grants"]
    assert (await err(kms, "RetireGrant", user("mallory"), GrantToken=grant["GrantToken"]))[0] == "AccessDeniedException"
    await call(kms, "RetireGrant", user("ret"), GrantToken=grant["GrantToken"])
    assert (await err(kms, "Decrypt", dave, CiphertextBlob=blob, EncryptionContext={"dept": "it", "x": "1"}))[0] == "AccessDeniedException"
    g2 = await call(kms, "CreateGrant", KeyId=md["KeyId"], GranteePrincipal=dave.principal_arn, Operations=["DescribeKey"])
    await call(kms, "DescribeKey", dave, KeyId=md["KeyId"])
    await call(kms, "RevokeGrant", KeyId=md["KeyId"], GrantId=g2["GrantId"])
    assert (await err(kms, "DescribeKey", dave, KeyId=md["KeyId"]))[0] == "AccessDeniedException"
    assert (await err(kms, "RevokeGrant", KeyId=md["KeyId"], GrantId=g2["GrantId"]))[0] == "NotFoundException"
    assert (await err(kms, "CreateGrant", KeyId=md["KeyId"], GranteePrincipal=dave.principal_arn, Operations=["Decrypt"],
                      DryRun=True))[0] == "DryRunOperationException"


async def test_rotation_keeps_old_ciphertexts(kms: KmsService, clock: Clock) -> None:
    md = await new_key(kms)
    kid = md["KeyId"]
    old = (await call(kms, "Encrypt", KeyId=kid, Plaintext=b"old"))["CiphertextBlob"]
    assert (await call(kms, "GetKeyRotationStatus", KeyId=kid))["KeyRotationEnabled"] is False
    assert (await err(kms, "EnableKeyRotation", KeyId=kid, RotationPeriodInDays=89))[0] == "ValidationException"
    await call(kms, "EnableKeyRotation", KeyId=kid, RotationPeriodInDays=90)
    status = await call(kms, "GetKeyRotationStatus", KeyId=kid)
    assert status["RotationPeriodInDays"] == 90 and status["NextRotationDate"] == clock.now + __import__("datetime").timedelta(days=90)
    await call(kms, "RotateKeyOnDemand", KeyId=kid)
    clock.advance(days=91)
    await kms.run_due_tasks()
    rotations = (await call(kms, "ListKeyRotations", KeyId=kid))["Rotations"]
    assert [r["RotationType"] for r in rotations] == ["ON_DEMAND", "AUTOMATIC"]
    assert rotations[-1]["KeyMaterialState"] == "CURRENT"
    assert len((await call(kms, "ListKeyRotations", KeyId=kid, IncludeKeyMaterial="ALL_KEY_MATERIAL"))["Rotations"]) == 3
    new = (await call(kms, "Encrypt", KeyId=kid, Plaintext=b"new"))["CiphertextBlob"]
    assert new[20:52] != old[20:52]
    assert (await call(kms, "Decrypt", CiphertextBlob=old))["Plaintext"] == b"old"
    assert (await call(kms, "DescribeKey", KeyId=kid))["KeyMetadata"]["CurrentKeyMaterialId"] == rotations[-1]["KeyMaterialId"]
    hm = await new_key(kms, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    assert (await err(kms, "EnableKeyRotation", KeyId=hm["KeyId"]))[0] == "UnsupportedOperationException"


@pytest.mark.parametrize(("spec", "algs"), [
    ("RSA_2048", ["RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PSS_SHA_512"]), ("ECC_NIST_P256", ["ECDSA_SHA_256"]),
    ("ECC_NIST_P384", ["ECDSA_SHA_384"]), ("ECC_NIST_P521", ["ECDSA_SHA_512"]), ("ECC_SECG_P256K1", ["ECDSA_SHA_256"]),
    ("ECC_NIST_EDWARDS25519", ["ED25519_SHA_512"])])
async def test_sign_verify(kms: KmsService, spec: str, algs: list[str]) -> None:
    md = await new_key(kms, KeySpec=spec, KeyUsage="SIGN_VERIFY")
    assert md["SigningAlgorithms"]
    for alg in algs:
        sig = (await call(kms, "Sign", KeyId=md["KeyId"], Message=b"msg", SigningAlgorithm=alg))["Signature"]
        assert (await call(kms, "Verify", KeyId=md["KeyId"], Message=b"msg", Signature=sig,
                           SigningAlgorithm=alg))["SignatureValid"] is True
        assert await err(kms, "Verify", KeyId=md["KeyId"], Message=b"other", Signature=sig, SigningAlgorithm=alg) == (
            "KMSInvalidSignatureException", "")
    if spec != "ECC_NIST_EDWARDS25519":
        assert await err(kms, "Sign", KeyId=md["KeyId"], Message=b"short", MessageType="DIGEST", SigningAlgorithm=algs[0]) == (
            "ValidationException", f"Digest is invalid length for algorithm {algs[0]}.")
    assert await err(kms, "Encrypt", KeyId=md["KeyId"], Plaintext=b"x") == (
        "InvalidKeyUsageException", f"{md['Arn']} key usage is SIGN_VERIFY which is not valid for Encrypt.")


async def test_rsa_encryption_interoperates(kms: KmsService) -> None:
    md = await new_key(kms, KeySpec="RSA_3072", KeyUsage="ENCRYPT_DECRYPT")
    pub = serialization.load_der_public_key((await call(kms, "GetPublicKey", KeyId=md["KeyId"]))["PublicKey"])
    blob = pub.encrypt(b"hi", padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
    assert (await call(kms, "Decrypt", KeyId=md["KeyId"], CiphertextBlob=blob,
                       EncryptionAlgorithm="RSAES_OAEP_SHA_256"))["Plaintext"] == b"hi"
    enc = await call(kms, "Encrypt", KeyId=md["KeyId"], Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_1")
    assert len(enc["CiphertextBlob"]) == 384
    assert await err(kms, "Encrypt", KeyId=md["KeyId"], Plaintext=b"x" * 343, EncryptionAlgorithm="RSAES_OAEP_SHA_1") == (
        "ValidationException", "Algorithm RSAES_OAEP_SHA_1 and key spec RSA_3072 cannot encrypt data larger than 342 bytes.")
    assert (await err(kms, "Decrypt", CiphertextBlob=blob))[0] == "InvalidCiphertextException"


async def test_hmac_and_key_agreement(kms: KmsService) -> None:
    for spec, alg in (("HMAC_224", "HMAC_SHA_224"), ("HMAC_512", "HMAC_SHA_512")):
        md = await new_key(kms, KeySpec=spec, KeyUsage="GENERATE_VERIFY_MAC")
        mac = (await call(kms, "GenerateMac", KeyId=md["KeyId"], Message=b"m", MacAlgorithm=alg))["Mac"]
        assert (await call(kms, "VerifyMac", KeyId=md["KeyId"], Message=b"m", Mac=mac, MacAlgorithm=alg))["MacValid"] is True
        assert await err(kms, "VerifyMac", KeyId=md["KeyId"], Message=b"n", Mac=mac, MacAlgorithm=alg) == ("KMSInvalidMacException", "")
    assert await err(kms, "GenerateMac", KeyId=md["KeyId"], Message=b"m", MacAlgorithm="HMAC_SHA_256") == (
        "InvalidKeyUsageException", "Algorithm HMAC_SHA_256 is incompatible with key spec HMAC_512.")
    assert await err(kms, "CreateKey", KeySpec="HMAC_256") == (
        "ValidationException", "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.")
    ka = await new_key(kms, KeySpec="ECC_NIST_P384", KeyUsage="KEY_AGREEMENT")
    assert ka["KeyAgreementAlgorithms"] == ["ECDH"]
    peer = ec.generate_private_key(ec.SECP384R1())
    der = peer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    out = await call(kms, "DeriveSharedSecret", KeyId=ka["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=der)
    kms_pub = serialization.load_der_public_key((await call(kms, "GetPublicKey", KeyId=ka["KeyId"]))["PublicKey"])
    assert out["SharedSecret"] == peer.exchange(ec.ECDH(), kms_pub)
    assert (await err(kms, "CreateKey", KeySpec="ML_DSA_44", KeyUsage="SIGN_VERIFY"))[0] == "UnsupportedOperationException"


async def test_data_key_pairs(kms: KmsService) -> None:
    md = await new_key(kms)
    out = await call(kms, "GenerateDataKeyPair", KeyId=md["KeyId"], KeyPairSpec="ECC_NIST_P256", EncryptionContext={"a": "b"})
    private = serialization.load_der_private_key(out["PrivateKeyPlaintext"], None)
    assert private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == out["PublicKey"]
    assert (await call(kms, "Decrypt", CiphertextBlob=out["PrivateKeyCiphertextBlob"], EncryptionContext={"a": "b"}))["Plaintext"] == out["PrivateKeyPlaintext"]
    wo = await call(kms, "GenerateDataKeyPairWithoutPlaintext", KeyId=md["KeyId"], KeyPairSpec="RSA_2048")
    assert "PrivateKeyPlaintext" not in wo and wo["KeyPairSpec"] == "RSA_2048"
    assert (await err(kms, "GenerateDataKeyPair", KeyId=md["KeyId"], KeyPairSpec="SM2"))[0] == "UnsupportedOperationException"


async def test_import_key_material(kms: KmsService, clock: Clock) -> None:
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
    import os
    md = await new_key(kms, Origin="EXTERNAL")
    assert md["KeyState"] == "PendingImport" and md["Enabled"] is False
    assert await err(kms, "Encrypt", KeyId=md["KeyId"], Plaintext=b"x") == ("KMSInvalidStateException", f"{md['Arn']} is pending import.")
    material = os.urandom(32)
    params = await call(kms, "GetParametersForImport", KeyId=md["KeyId"], WrappingAlgorithm="RSA_AES_KEY_WRAP_SHA_256",
                        WrappingKeySpec="RSA_3072")
    pub = serialization.load_der_public_key(params["PublicKey"])
    kek = os.urandom(32)
    wrapped = pub.encrypt(kek, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)) + aes_key_wrap_with_padding(kek, material)
    assert await err(kms, "ImportKeyMaterial", KeyId=md["KeyId"], ImportToken=params["ImportToken"],
                     EncryptedKeyMaterial=wrapped, ExpirationModel="KEY_MATERIAL_EXPIRES") == (
        "ValidationException", "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES")
    await call(kms, "ImportKeyMaterial", KeyId=md["KeyId"], ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
               ValidTo=clock.now + __import__("datetime").timedelta(days=2))
    described = (await call(kms, "DescribeKey", KeyId=md["KeyId"]))["KeyMetadata"]
    assert described["KeyState"] == "Enabled" and described["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
    blob = (await call(kms, "Encrypt", KeyId=md["KeyId"], Plaintext=b"imported"))["CiphertextBlob"]
    # Other material cannot be imported; the same material can, after deletion.
    other = pub.encrypt(kek, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)) + aes_key_wrap_with_padding(kek, os.urandom(32))
    assert (await err(kms, "ImportKeyMaterial", KeyId=md["KeyId"], ImportToken=params["ImportToken"],
                      EncryptedKeyMaterial=other))[0] == "IncorrectKeyMaterialException"
    await call(kms, "DeleteImportedKeyMaterial", KeyId=md["KeyId"])
    assert (await call(kms, "DescribeKey", KeyId=md["KeyId"]))["KeyMetadata"]["KeyState"] == "PendingImport"
    assert (await err(kms, "Decrypt", CiphertextBlob=blob))[0] == "KMSInvalidStateException"
    await call(kms, "ImportKeyMaterial", KeyId=md["KeyId"], ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped)
    assert (await call(kms, "Decrypt", CiphertextBlob=blob))["Plaintext"] == b"imported"
    clock.advance(days=2)
    assert await err(kms, "ImportKeyMaterial", KeyId=md["KeyId"], ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped) == (
        "ExpiredImportTokenException", "The import token has expired.")
    sym = await new_key(kms)
    assert await err(kms, "GetParametersForImport", KeyId=sym["KeyId"], WrappingAlgorithm="RSAES_OAEP_SHA_1",
                     WrappingKeySpec="RSA_2048") == (
        "UnsupportedOperationException", f"{sym['Arn']} origin is AWS_KMS which is not valid for this operation.")


async def test_aws_managed_key_cannot_be_managed(kms: KmsService) -> None:
    md = (await call(kms, "GetOrCreateAwsManagedKey", AliasName="alias/aws/s3"))["KeyMetadata"]
    again = (await call(kms, "GetOrCreateAwsManagedKey", AliasName="alias/aws/s3"))["KeyMetadata"]
    assert md["KeyId"] == again["KeyId"] and md["KeyManager"] == "AWS"
    for op, params in (("DisableKey", {}), ("ScheduleKeyDeletion", {}), ("PutKeyPolicy", {"Policy": "{}"}),
                       ("Encrypt", {"Plaintext": b"x"})):
        code, message = await err(kms, op, KeyId=md["KeyId"], **params)
        assert code == "AccessDeniedException", op
    via = user("erin", ALLOW_ALL)
    via.invoked_by, via.via_service = "s3.amazonaws.com", "s3.us-east-1.amazonaws.com"
    gdk = await call(kms, "GenerateDataKey", via, KeyId="alias/aws/s3", KeySpec="AES_256")
    assert (await call(kms, "Decrypt", via, CiphertextBlob=gdk["CiphertextBlob"]))["Plaintext"] == gdk["Plaintext"]
    await call(kms, "DescribeKey", KeyId="alias/aws/s3")


async def test_one_audit_record_per_request_without_secrets(kms: KmsService) -> None:
    before = len(kms.sink.events)
    md = await new_key(kms)
    await call(kms, "Encrypt", KeyId=md["KeyId"], Plaintext=b"TOPSECRET", EncryptionContext={"c": "d"})
    await err(kms, "Encrypt", KeyId=md["KeyId"], Plaintext=b"TOPSECRET" * 500)
    await err(kms, "DescribeKey", KeyId="nope")
    events = kms.sink.events[before:]
    assert [e["eventName"] for e in events] == ["CreateKey", "Encrypt", "Encrypt", "DescribeKey"]
    assert "TOPSECRET" not in json.dumps(events, default=str)
    enc = events[1]
    assert enc["requestParameters"] == {"keyId": md["KeyId"], "encryptionContext": {"c": "d"}}
    assert enc["resources"] == [{"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": md["Arn"]}]
    assert enc["additionalEventData"]["keyMaterialId"] and enc["readOnly"] is True and enc["eventCategory"] == "Management"
    assert events[2]["errorCode"] == "ValidationException" and events[3]["errorCode"] == "NotFoundException"
    assert events[0]["readOnly"] is False and events[0]["responseElements"]["keyMetadata"]["keyId"] == md["KeyId"]


async def test_state_survives_restart(kms: KmsService, clock: Clock) -> None:
    md = await new_key(kms, Description="persist")
    await call(kms, "CreateAlias", AliasName="alias/keep", TargetKeyId=md["KeyId"])
    await call(kms, "CreateGrant", KeyId=md["KeyId"], GranteePrincipal=f"arn:aws:iam::{ACCOUNT}:user/z", Operations=["Encrypt"])
    other = KmsService(store=kms.store, hsm=kms.hsm, sink=kms.sink, account=ACCOUNT, region=REGION, clock=clock)
    await other.load()
    assert other.keys[md["KeyId"]] == kms.keys[md["KeyId"]]
    assert "alias/keep" in other.aliases and len(other.grants) == 1
    await call(other, "Encrypt", KeyId="alias/keep", Plaintext=b"x")


async def test_pagination_of_keys(kms: KmsService) -> None:
    ids = {(await new_key(kms))["KeyId"] for _ in range(5)}
    seen, marker = [], None
    while True:
        page = await call(kms, "ListKeys", Limit=2, **({"Marker": marker} if marker else {}))
        seen += [k["KeyId"] for k in page["Keys"]]
        if not page["Truncated"]:
            break
        marker = page["NextMarker"]
    assert set(seen) == ids and len(seen) == 5
    assert (await err(kms, "ListKeys", Marker="!!!"))[0] == "InvalidMarkerException"
