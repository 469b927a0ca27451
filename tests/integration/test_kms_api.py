"""AWS KMS through the gateway with boto3: every operation, every key spec, answers and errors.

Uses the session-wide ``stack`` fixture (kms, s3, trail, gateway on free ports, SoftHSM2).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

ACCOUNT, REGION = "111122223333", "us-east-1"


@pytest.fixture(scope="module")
def kms(stack: Any) -> Any:
    return stack.client("kms")


def error_of(call: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def new_key(kms: Any, **kwargs: Any) -> dict[str, Any]:
    return kms.create_key(**kwargs)["KeyMetadata"]


SPECS = [
    ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "EncryptionAlgorithms", ["SYMMETRIC_DEFAULT"]),
    ("RSA_2048", "ENCRYPT_DECRYPT", "EncryptionAlgorithms", ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]),
    ("RSA_3072", "SIGN_VERIFY", "SigningAlgorithms", ["RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384",
                                                       "RSASSA_PKCS1_V1_5_SHA_512", "RSASSA_PSS_SHA_256",
                                                       "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512"]),
    ("RSA_4096", "ENCRYPT_DECRYPT", "EncryptionAlgorithms", ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]),
    ("ECC_NIST_P256", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_256"]),
    ("ECC_NIST_P384", "KEY_AGREEMENT", "KeyAgreementAlgorithms", ["ECDH"]),
    ("ECC_NIST_P521", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_512"]),
    ("ECC_SECG_P256K1", "SIGN_VERIFY", "SigningAlgorithms", ["ECDSA_SHA_256"]),
    ("ECC_NIST_EDWARDS25519", "SIGN_VERIFY", "SigningAlgorithms", ["ED25519_SHA_512"]),
    ("HMAC_224", "GENERATE_VERIFY_MAC", "MacAlgorithms", ["HMAC_SHA_224"]),
    ("HMAC_256", "GENERATE_VERIFY_MAC", "MacAlgorithms", ["HMAC_SHA_256"]),
    ("HMAC_384", "GENERATE_VERIFY_MAC", "MacAlgorithms", ["HMAC_SHA_384"]),
    ("HMAC_512", "GENERATE_VERIFY_MAC", "MacAlgorithms", ["HMAC_SHA_512"]),
]


@pytest.mark.parametrize(("spec", "usage", "member", "algorithms"), SPECS)
def test_create_and_describe_every_key_spec(kms: Any, spec: str, usage: str, member: str, algorithms: list[str]) -> None:
    md = new_key(kms, KeySpec=spec, KeyUsage=usage, Description=f"spec {spec}")
    assert md["KeySpec"] == spec and md["CustomerMasterKeySpec"] == spec and md["KeyUsage"] == usage
    assert md[member] == algorithms and md["Enabled"] is True and md["MultiRegion"] is False
    assert md["Origin"] == "AWS_KMS" and md["KeyManager"] == "CUSTOMER" and md["AWSAccountId"] == ACCOUNT
    described = kms.describe_key(KeyId=md["Arn"])["KeyMetadata"]
    assert described["KeyId"] == md["KeyId"] and described["Description"] == f"spec {spec}"
    if spec.startswith(("RSA", "ECC")):
        pub = kms.get_public_key(KeyId=md["KeyId"])
        assert pub["KeySpec"] == spec and pub[member] == algorithms
        serialization.load_der_public_key(pub["PublicKey"])
    else:
        assert error_of(kms.get_public_key, KeyId=md["KeyId"])[0] == "UnsupportedOperationException"


def test_unsupported_and_invalid_specs(kms: Any) -> None:
    assert error_of(kms.create_key, KeySpec="ML_DSA_65", KeyUsage="SIGN_VERIFY")[0] == "UnsupportedOperationException"
    assert error_of(kms.create_key, KeySpec="SM2", KeyUsage="SIGN_VERIFY")[0] == "UnsupportedOperationException"
    assert error_of(kms.create_key, KeySpec="RSA_2048") == (
        "ValidationException", "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.")
    code, message = error_of(kms.create_key, KeySpec="HMAC_random", KeyUsage="GENERATE_VERIFY_MAC")
    assert code == "ValidationException" and "at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set" in message


def test_symmetric_encryption(kms: Any) -> None:
    md = new_key(kms)
    out = kms.encrypt(KeyId=md["KeyId"], Plaintext=b"data", EncryptionContext={"purpose": "test"})
    assert out["KeyId"] == md["Arn"] and out["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    dec = kms.decrypt(CiphertextBlob=out["CiphertextBlob"], EncryptionContext={"purpose": "test"})
    assert dec["Plaintext"] == b"data" and dec["KeyId"] == md["Arn"] and len(dec["KeyMaterialId"]) == 64
    assert error_of(kms.decrypt, CiphertextBlob=out["CiphertextBlob"]) == ("InvalidCiphertextException", "")
    other = new_key(kms)
    assert error_of(kms.decrypt, CiphertextBlob=out["CiphertextBlob"], KeyId=other["KeyId"],
                    EncryptionContext={"purpose": "test"}) == (
        "IncorrectKeyException", "The key ID in the request does not identify a CMK that can perform this operation.")
    assert error_of(kms.encrypt, KeyId=md["KeyId"], Plaintext=b"x" * 4097) == (
        "ValidationException", "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: "
        "Member must have length less than or equal to 4096")
    re = kms.re_encrypt(CiphertextBlob=out["CiphertextBlob"], SourceEncryptionContext={"purpose": "test"},
                        DestinationKeyId=other["KeyId"], DestinationEncryptionContext={"p": "2"})
    assert re["SourceKeyId"] == md["Arn"] and re["KeyId"] == other["Arn"]
    assert kms.decrypt(CiphertextBlob=re["CiphertextBlob"], EncryptionContext={"p": "2"})["Plaintext"] == b"data"
    missing = str(uuid.uuid4())
    assert error_of(kms.encrypt, KeyId=missing, Plaintext=b"x") == (
        "NotFoundException", f"Key 'arn:aws:kms:{REGION}:{ACCOUNT}:key/{missing}' does not exist")
    assert error_of(kms.describe_key, KeyId="fake-key-id") == ("NotFoundException", "Invalid keyId 'fake-key-id'")


def test_data_keys_and_random(kms: Any) -> None:
    md = new_key(kms)
    gdk = kms.generate_data_key(KeyId=md["KeyId"], KeySpec="AES_128", EncryptionContext={"a": "b"})
    assert len(gdk["Plaintext"]) == 16 and gdk["KeyId"] == md["Arn"]
    assert kms.decrypt(CiphertextBlob=gdk["CiphertextBlob"], EncryptionContext={"a": "b"})["Plaintext"] == gdk["Plaintext"]
    wo = kms.generate_data_key_without_plaintext(KeyId=md["KeyId"], NumberOfBytes=48)
    assert "Plaintext" not in wo
    assert error_of(kms.generate_data_key, KeyId=md["KeyId"], KeySpec="AES_256", NumberOfBytes=32)[0] == "ValidationException"
    pair = kms.generate_data_key_pair(KeyId=md["KeyId"], KeyPairSpec="RSA_2048")
    private = serialization.load_der_private_key(pair["PrivateKeyPlaintext"], None)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert kms.decrypt(CiphertextBlob=pair["PrivateKeyCiphertextBlob"])["Plaintext"] == pair["PrivateKeyPlaintext"]
    pair2 = kms.generate_data_key_pair_without_plaintext(KeyId=md["KeyId"], KeyPairSpec="ECC_NIST_P384")
    assert "PrivateKeyPlaintext" not in pair2 and pair2["KeyPairSpec"] == "ECC_NIST_P384"
    assert len(kms.generate_random(NumberOfBytes=1024)["Plaintext"]) == 1024
    assert error_of(kms.generate_random, NumberOfBytes=1025) == (
        "ValidationException", "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy "
        "constraint: Member must have value less than or equal to 1024")


def test_rsa_encryption_interoperates(kms: Any) -> None:
    md = new_key(kms, KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    pub = serialization.load_der_public_key(kms.get_public_key(KeyId=md["KeyId"])["PublicKey"])
    for alg, h in (("RSAES_OAEP_SHA_1", hashes.SHA1()), ("RSAES_OAEP_SHA_256", hashes.SHA256())):
        outside = pub.encrypt(b"from openssl", padding.OAEP(padding.MGF1(h), h, None))
        assert kms.decrypt(KeyId=md["KeyId"], CiphertextBlob=outside, EncryptionAlgorithm=alg)["Plaintext"] == b"from openssl"
        blob = kms.encrypt(KeyId=md["KeyId"], Plaintext=b"x", EncryptionAlgorithm=alg)["CiphertextBlob"]
        assert len(blob) == 256
        assert kms.decrypt(KeyId=md["KeyId"], CiphertextBlob=blob, EncryptionAlgorithm=alg)["Plaintext"] == b"x"
    assert error_of(kms.encrypt, KeyId=md["KeyId"], Plaintext=b"x" * 215, EncryptionAlgorithm="RSAES_OAEP_SHA_1") == (
        "ValidationException", "Algorithm RSAES_OAEP_SHA_1 and key spec RSA_2048 cannot encrypt data larger than 214 bytes.")
    assert error_of(kms.generate_data_key, KeyId=md["KeyId"], KeySpec="AES_256")[0] == "InvalidKeyUsageException"


@pytest.mark.parametrize(("spec", "alg"), [
    ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256"), ("RSA_2048", "RSASSA_PSS_SHA_384"), ("RSA_4096", "RSASSA_PSS_SHA_512"),
    ("ECC_NIST_P256", "ECDSA_SHA_256"), ("ECC_NIST_P384", "ECDSA_SHA_384"), ("ECC_NIST_P521", "ECDSA_SHA_512"),
    ("ECC_SECG_P256K1", "ECDSA_SHA_256"), ("ECC_NIST_EDWARDS25519", "ED25519_SHA_512")])
def test_signatures_verify_outside(kms: Any, spec: str, alg: str) -> None:
    md = new_key(kms, KeySpec=spec, KeyUsage="SIGN_VERIFY")
    pub = serialization.load_der_public_key(kms.get_public_key(KeyId=md["KeyId"])["PublicKey"])
    message = b"message to sign"
    sig = kms.sign(KeyId=md["KeyId"], Message=message, SigningAlgorithm=alg, MessageType="RAW")
    assert sig["SigningAlgorithm"] == alg and sig["KeyId"] == md["Arn"]
    signature = sig["Signature"]
    if isinstance(pub, ed25519.Ed25519PublicKey):
        pub.verify(signature, message)
    else:
        h = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[-3:]]
        if isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(signature, message, ec.ECDSA(h))
        elif "PSS" in alg:
            pub.verify(signature, message, padding.PSS(padding.MGF1(h), h.digest_size), h)
        else:
            pub.verify(signature, message, padding.PKCS1v15(), h)
        digest = hashes.Hash(h)
        digest.update(message)
        d = digest.finalize()
        by_digest = kms.sign(KeyId=md["KeyId"], Message=d, SigningAlgorithm=alg, MessageType="DIGEST")["Signature"]
        assert kms.verify(KeyId=md["KeyId"], Message=message, Signature=by_digest, SigningAlgorithm=alg)["SignatureValid"]
        assert error_of(kms.sign, KeyId=md["KeyId"], Message=b"short", SigningAlgorithm=alg, MessageType="DIGEST") == (
            "ValidationException", f"Digest is invalid length for algorithm {alg}.")
    assert kms.verify(KeyId=md["KeyId"], Message=message, Signature=signature, SigningAlgorithm=alg)["SignatureValid"] is True
    assert error_of(kms.verify, KeyId=md["KeyId"], Message=b"tampered", Signature=signature, SigningAlgorithm=alg) == (
        "KMSInvalidSignatureException", "")
    assert error_of(kms.encrypt, KeyId=md["KeyId"], Plaintext=b"x") == (
        "InvalidKeyUsageException", f"{md['Arn']} key usage is SIGN_VERIFY which is not valid for Encrypt.")


@pytest.mark.parametrize(("spec", "alg"), [("HMAC_224", "HMAC_SHA_224"), ("HMAC_256", "HMAC_SHA_256"),
                                           ("HMAC_384", "HMAC_SHA_384"), ("HMAC_512", "HMAC_SHA_512")])
def test_macs(kms: Any, spec: str, alg: str) -> None:
    md = new_key(kms, KeySpec=spec, KeyUsage="GENERATE_VERIFY_MAC")
    mac = kms.generate_mac(KeyId=md["KeyId"], Message=b"msg", MacAlgorithm=alg)
    assert mac["MacAlgorithm"] == alg and len(mac["Mac"]) == int(alg[-3:]) // 8
    assert kms.verify_mac(KeyId=md["KeyId"], Message=b"msg", Mac=mac["Mac"], MacAlgorithm=alg)["MacValid"] is True
    assert error_of(kms.verify_mac, KeyId=md["KeyId"], Message=b"other", Mac=mac["Mac"], MacAlgorithm=alg) == (
        "KMSInvalidMacException", "")
    wrong = "HMAC_SHA_256" if alg != "HMAC_SHA_256" else "HMAC_SHA_512"
    assert error_of(kms.generate_mac, KeyId=md["KeyId"], Message=b"m", MacAlgorithm=wrong) == (
        "InvalidKeyUsageException", f"Algorithm {wrong} is incompatible with key spec {spec}.")


@pytest.mark.parametrize(("spec", "curve"), [("ECC_NIST_P256", ec.SECP256R1()), ("ECC_NIST_P384", ec.SECP384R1()),
                                             ("ECC_NIST_P521", ec.SECP521R1())])
def test_derive_shared_secret(kms: Any, spec: str, curve: ec.EllipticCurve) -> None:
    md = new_key(kms, KeySpec=spec, KeyUsage="KEY_AGREEMENT")
    peer = ec.generate_private_key(curve)
    der = peer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    out = kms.derive_shared_secret(KeyId=md["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=der)
    ours = serialization.load_der_public_key(kms.get_public_key(KeyId=md["KeyId"])["PublicKey"])
    assert out["SharedSecret"] == peer.exchange(ec.ECDH(), ours) and out["KeyOrigin"] == "AWS_KMS"


def test_key_states(kms: Any) -> None:
    md = new_key(kms)
    kid, arn = md["KeyId"], md["Arn"]
    kms.update_key_description(KeyId=kid, Description="changed")
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["Description"] == "changed"
    kms.disable_key(KeyId=kid)
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Disabled"
    assert error_of(kms.encrypt, KeyId=kid, Plaintext=b"x") == ("DisabledException", f"{arn} is disabled.")
    kms.enable_key(KeyId=kid)
    out = kms.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    assert out["KeyState"] == "PendingDeletion" and out["PendingWindowInDays"] == 7 and out["KeyId"] == arn
    described = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert described["Enabled"] is False and described["PendingDeletionWindowInDays"] == 7 and "DeletionDate" in described
    assert error_of(kms.encrypt, KeyId=kid, Plaintext=b"x") == ("KMSInvalidStateException", f"{arn} is pending deletion.")
    assert error_of(kms.schedule_key_deletion, KeyId=kid, PendingWindowInDays=31)[0] == "ValidationException"
    assert kms.cancel_key_deletion(KeyId=kid)["KeyId"] == arn
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["KeyState"] == "Disabled"
    assert error_of(kms.cancel_key_deletion, KeyId=kid) == ("KMSInvalidStateException", f"{arn} is not pending deletion.")


def test_list_keys_paginates(kms: Any) -> None:
    for _ in range(3):
        new_key(kms)
    keys = []
    for page in kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 2}):
        keys += page["Keys"]
    assert len(keys) == len({k["KeyId"] for k in keys}) >= 3
    assert all(k["KeyArn"].endswith(k["KeyId"]) for k in keys)


def test_aliases(kms: Any) -> None:
    k1, k2 = new_key(kms), new_key(kms)
    name = f"alias/it-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=name, TargetKeyId=k1["KeyId"])
    a_arn = f"arn:aws:kms:{REGION}:{ACCOUNT}:{name}"
    assert error_of(kms.create_alias, AliasName=name, TargetKeyId=k2["KeyId"]) == (
        "AlreadyExistsException", f"An alias with the name {a_arn} already exists")
    assert error_of(kms.create_alias, AliasName="no-prefix", TargetKeyId=k2["KeyId"]) == (
        "ValidationException", 'Alias must start with the prefix "alias/". Please see '
        "https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html")
    assert error_of(kms.create_alias, AliasName="alias/aws/x", TargetKeyId=k2["KeyId"])[0] == "NotAuthorizedException"
    blob = kms.encrypt(KeyId=name, Plaintext=b"via alias")["CiphertextBlob"]
    assert kms.describe_key(KeyId=a_arn)["KeyMetadata"]["KeyId"] == k1["KeyId"]
    kms.update_alias(AliasName=name, TargetKeyId=k2["KeyId"])
    entry = kms.list_aliases(KeyId=k2["KeyId"])["Aliases"][0]
    assert entry["AliasName"] == name and entry["TargetKeyId"] == k2["KeyId"] and entry["AliasArn"] == a_arn
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"via alias"
    all_names = [a["AliasName"] for p in kms.get_paginator("list_aliases").paginate() for a in p["Aliases"]]
    assert name in all_names and "alias/aws/s3" in all_names
    kms.delete_alias(AliasName=name)
    assert error_of(kms.describe_key, KeyId=name) == ("NotFoundException", f"Alias '{a_arn}' is not found.")


def test_policies_and_iam_users(stack: Any, kms: Any) -> None:
    iam = stack.client("iam")
    name = f"keyuser-{uuid.uuid4().hex[:6]}"
    user_arn = iam.create_user(UserName=name)["User"]["Arn"]
    creds = iam.create_access_key(UserName=name)["AccessKey"]
    iam.put_user_policy(UserName=name, PolicyName="kms-describe", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:DescribeKey", "Resource": "*"}]}))
    user_kms = stack.client("kms", aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"])
    md = new_key(kms)
    time.sleep(0.2)
    assert user_kms.describe_key(KeyId=md["KeyId"])["KeyMetadata"]["KeyId"] == md["KeyId"]
    assert error_of(user_kms.encrypt, KeyId=md["KeyId"], Plaintext=b"x") == (
        "AccessDeniedException", f"User: {user_arn} is not authorized to perform: kms:Encrypt on resource: {md['Arn']} "
        "because no identity-based policy allows the kms:Encrypt action")
    admin = {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
             "Action": "kms:*", "Resource": "*"}
    key_user = {"Sid": "Allow use of the key", "Effect": "Allow", "Principal": {"AWS": user_arn},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*"}
    with_user = json.dumps({"Version": "2012-10-17", "Id": "key-consolepolicy-3", "Statement": [admin, key_user]})
    kms.put_key_policy(KeyId=md["KeyId"], PolicyName="default", Policy=with_user)
    assert json.loads(kms.get_key_policy(KeyId=md["KeyId"], PolicyName="default")["Policy"])["Id"] == "key-consolepolicy-3"
    assert kms.list_key_policies(KeyId=md["KeyId"])["PolicyNames"] == ["default"]
    blob = user_kms.encrypt(KeyId=md["KeyId"], Plaintext=b"user data")["CiphertextBlob"]
    assert user_kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"user data"
    # Remove the key user: Encrypt and Decrypt are denied on the next request ...
    kms.put_key_policy(KeyId=md["KeyId"], PolicyName="default",
                       Policy=json.dumps({"Version": "2012-10-17", "Statement": [admin]}))
    assert error_of(user_kms.encrypt, KeyId=md["KeyId"], Plaintext=b"x")[0] == "AccessDeniedException"
    assert error_of(user_kms.decrypt, CiphertextBlob=blob) == (
        "AccessDeniedException", f"User: {user_arn} is not authorized to perform: kms:Decrypt on resource: {md['Arn']} "
        "because no identity-based policy allows the kms:Decrypt action")
    # ... and allowed again after re-adding it.
    kms.put_key_policy(KeyId=md["KeyId"], PolicyName="default", Policy=with_user)
    assert user_kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"user data"
    assert error_of(kms.put_key_policy, KeyId=md["KeyId"], PolicyName="default", Policy="{}")[0] == \
        "MalformedPolicyDocumentException"


def test_grants(kms: Any) -> None:
    md = new_key(kms)
    grantee = f"arn:aws:iam::{ACCOUNT}:role/grantee"
    retiring = f"arn:aws:iam::{ACCOUNT}:role/retirer"
    g = kms.create_grant(KeyId=md["KeyId"], GranteePrincipal=grantee, RetiringPrincipal=retiring, Name="g1",
                         Operations=["Encrypt", "Decrypt"], Constraints={"EncryptionContextEquals": {"k": "v"}})
    assert len(g["GrantId"]) == 64
    again = kms.create_grant(KeyId=md["KeyId"], GranteePrincipal=grantee, RetiringPrincipal=retiring, Name="g1",
                             Operations=["Encrypt", "Decrypt"], Constraints={"EncryptionContextEquals": {"k": "v"}})
    assert again["GrantId"] == g["GrantId"]
    grants = kms.list_grants(KeyId=md["KeyId"])["Grants"]
    assert len(grants) == 1 and grants[0]["GranteePrincipal"] == grantee and grants[0]["Name"] == "g1"
    assert grants[0]["Constraints"] == {"EncryptionContextEquals": {"k": "v"}}
    assert grants[0]["IssuingAccount"] == f"arn:aws:iam::{ACCOUNT}:root"
    assert kms.list_retirable_grants(RetiringPrincipal=retiring)["Grants"][0]["GrantId"] == g["GrantId"]
    kms.retire_grant(KeyId=md["KeyId"], GrantId=g["GrantId"])
    assert kms.list_grants(KeyId=md["KeyId"])["Grants"] == []
    g2 = kms.create_grant(KeyId=md["KeyId"], GranteePrincipal=grantee, Operations=["GenerateDataKey"])
    kms.revoke_grant(KeyId=md["KeyId"], GrantId=g2["GrantId"])
    assert error_of(kms.revoke_grant, KeyId=md["KeyId"], GrantId=g2["GrantId"])[0] == "NotFoundException"
    assert error_of(kms.create_grant, KeyId=md["KeyId"], GranteePrincipal=grantee, Operations=["Encrypt"],
                    DryRun=True)[0] == "DryRunOperationException"


def test_tags(kms: Any) -> None:
    md = new_key(kms, Tags=[{"TagKey": "Department", "TagValue": "IT"}])
    kms.tag_resource(KeyId=md["KeyId"], Tags=[{"TagKey": "Purpose", "TagValue": "Pretest"}])
    kms.tag_resource(KeyId=md["KeyId"], Tags=[{"TagKey": "Purpose", "TagValue": "Test"}])
    out = kms.list_resource_tags(KeyId=md["KeyId"])
    assert out["Tags"] == [{"TagKey": "Department", "TagValue": "IT"}, {"TagKey": "Purpose", "TagValue": "Test"}]
    assert out["Truncated"] is False
    kms.untag_resource(KeyId=md["KeyId"], TagKeys=["Purpose"])
    assert kms.list_resource_tags(KeyId=md["KeyId"])["Tags"] == [{"TagKey": "Department", "TagValue": "IT"}]
    assert error_of(kms.tag_resource, KeyId=md["KeyId"], Tags=[{"TagKey": "aws:x", "TagValue": "y"}])[0] == "TagException"


def test_rotation(kms: Any) -> None:
    md = new_key(kms)
    kid = md["KeyId"]
    before = kms.encrypt(KeyId=kid, Plaintext=b"before")["CiphertextBlob"]
    assert kms.get_key_rotation_status(KeyId=kid)["KeyRotationEnabled"] is False
    kms.enable_key_rotation(KeyId=kid, RotationPeriodInDays=180)
    status = kms.get_key_rotation_status(KeyId=kid)
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 180 and "NextRotationDate" in status
    assert error_of(kms.enable_key_rotation, KeyId=kid, RotationPeriodInDays=3000)[0] == "ValidationException"
    assert kms.rotate_key_on_demand(KeyId=kid)["KeyId"] == kid
    rotations = kms.list_key_rotations(KeyId=kid)["Rotations"]
    assert len(rotations) == 1 and rotations[0]["RotationType"] == "ON_DEMAND"
    assert kms.describe_key(KeyId=kid)["KeyMetadata"]["CurrentKeyMaterialId"] == rotations[0]["KeyMaterialId"]
    assert kms.decrypt(CiphertextBlob=before)["Plaintext"] == b"before"
    kms.disable_key_rotation(KeyId=kid)
    assert kms.get_key_rotation_status(KeyId=kid)["KeyRotationEnabled"] is False
    asym = new_key(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    assert error_of(kms.enable_key_rotation, KeyId=asym["KeyId"])[0] == "UnsupportedOperationException"


@pytest.mark.parametrize("wrapping", ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1",
                                      "RSA_AES_KEY_WRAP_SHA_256"])
def test_import_key_material(kms: Any, wrapping: str) -> None:
    md = new_key(kms, Origin="EXTERNAL", Description="byok")
    assert md["KeyState"] == "PendingImport" and md["Origin"] == "EXTERNAL"
    assert error_of(kms.encrypt, KeyId=md["KeyId"], Plaintext=b"x") == (
        "KMSInvalidStateException", f"{md['Arn']} is pending import.")
    params = kms.get_parameters_for_import(KeyId=md["KeyId"], WrappingAlgorithm=wrapping, WrappingKeySpec="RSA_2048")
    assert params["ParametersValidTo"] > datetime.now(timezone.utc) + timedelta(hours=23)
    pub = serialization.load_der_public_key(params["PublicKey"])
    material = os.urandom(32)
    h = hashes.SHA1() if wrapping.endswith("SHA_1") else hashes.SHA256()
    oaep = padding.OAEP(padding.MGF1(h), h, None)
    if wrapping.startswith("RSA_AES"):
        kek = os.urandom(32)
        wrapped = pub.encrypt(kek, oaep) + aes_key_wrap_with_padding(kek, material)
    else:
        wrapped = pub.encrypt(material, oaep)
    out = kms.import_key_material(KeyId=md["KeyId"], ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
                                  ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert len(out["KeyMaterialId"]) == 64
    described = kms.describe_key(KeyId=md["KeyId"])["KeyMetadata"]
    assert described["KeyState"] == "Enabled" and described["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE"
    blob = kms.encrypt(KeyId=md["KeyId"], Plaintext=b"byok")["CiphertextBlob"]
    kms.delete_imported_key_material(KeyId=md["KeyId"])
    assert kms.describe_key(KeyId=md["KeyId"])["KeyMetadata"]["KeyState"] == "PendingImport"
    kms.import_key_material(KeyId=md["KeyId"], ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
                            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"byok"
    assert error_of(kms.import_key_material, KeyId=md["KeyId"], ImportToken=b"garbage",
                    EncryptedKeyMaterial=wrapped)[0] == "InvalidImportTokenException"


def test_get_key_last_usage_and_custom_key_stores(kms: Any) -> None:
    md = new_key(kms)
    kms.encrypt(KeyId=md["KeyId"], Plaintext=b"x")
    usage = kms.get_key_last_usage(KeyId=md["KeyId"])
    assert usage["KeyLastUsage"]["Operation"] == "Encrypt" and usage["KeyId"] == md["Arn"]
    assert kms.describe_custom_key_stores()["CustomKeyStores"] == []
    assert error_of(kms.connect_custom_key_store, CustomKeyStoreId="cks-1234567890abcdef0")[0] == \
        "CustomKeyStoreNotFoundException"


def test_each_request_leaves_exactly_one_cloudtrail_record(stack: Any, kms: Any) -> None:
    md = new_key(kms, Description="audited")
    kms.encrypt(KeyId=md["KeyId"], Plaintext=b"NEVER-IN-THE-LOG", EncryptionContext={"case": "audit"})
    missing = str(uuid.uuid4())
    error_of(kms.describe_key, KeyId=missing)
    trail = stack.client("cloudtrail")
    deadline = time.monotonic() + 20
    mine: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        events = [json.loads(e["CloudTrailEvent"]) for p in trail.get_paginator("lookup_events").paginate(
            LookupAttributes=[{"AttributeKey": "EventSource", "AttributeValue": "kms.amazonaws.com"}]) for e in p["Events"]]
        mine = [e for e in events if md["Arn"] in json.dumps(e.get("resources")) or missing in json.dumps(e)]
        if len(mine) >= 3:
            break
        time.sleep(0.5)
    names = sorted(e["eventName"] for e in mine)
    assert names == ["CreateKey", "DescribeKey", "Encrypt"]
    assert "NEVER-IN-THE-LOG" not in json.dumps(mine)
    enc = next(e for e in mine if e["eventName"] == "Encrypt")
    assert enc["requestParameters"]["encryptionContext"] == {"case": "audit"}
    assert enc["resources"] == [{"accountId": ACCOUNT, "type": "AWS::KMS::Key", "ARN": md["Arn"]}]
    assert len(enc["additionalEventData"]["keyMaterialId"]) == 64 and enc["eventCategory"] == "Management"
    failed = next(e for e in mine if e["eventName"] == "DescribeKey")
    assert failed["errorCode"] == "NotFoundException"
