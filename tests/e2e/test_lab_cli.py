"""The AWS KMS lab (shared/reference 001 and 002) with the AWS CLI, as a newcomer would type it.

Every step is an ``aws kms`` / ``aws s3`` / ``aws s3api`` / ``aws cloudtrail`` / ``aws iam``
command run by the venv's AWS CLI (v1) with ``AWS_ENDPOINT_URL`` pointing at the stack
(``Stack.aws``). The account root is the administrator; ``cli-lab-user`` is the key user (see
tests/e2e/labkit.py for why its identity policy grants no KMS use). Names differ from the boto3
walk-through's so the two never collide on the shared session stack.

Clean-up uses boto3: it is not under test here.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.labkit import (
    EVENT_LOOKUP_TIMEOUT,
    ROOT_ARN,
    SIGV4_REQUIRED,
    TRAIL_DELIVERY_TIMEOUT,
    access_denied_message,
    check_log_key,
    check_s3_kms_record,
    cloudtrail_bucket_policy,
    console_key_policy,
    empty_and_delete_bucket,
    http_get,
    is_s3_kms_record,
    key_arn_pattern,
    lab_user_policy,
    make_png,
    object_url,
    poll,
    run_all,
    suffix,
    trail_arn,
)
from tests.stackctl import ACCOUNT_ID, REGION, Stack

SFX = suffix()
USER_NAME = "cli-lab-user"
ALIAS = "alias/myFirstKeyCli"
ALIAS2 = "alias/MyKMSKeyCli"
TRAIL_NAME = "myTrailCli"
TRAIL_BUCKET = f"mycloudtrailbucket{SFX}"
IMAGE_BUCKET = f"imagebucket{SFX}"
IMAGE_KEY = "Eiffel.png"
CLOCK_KEY = "clock.png"
LOG_PREFIX = f"AWSLogs/{ACCOUNT_ID}/CloudTrail/{REGION}/"
MiB = 1024 * 1024

_CLI_ERROR = re.compile(r"An error occurred \((?P<code>[^)]+)\) when calling the (?P<op>\w+) "
                        r"operation: (?P<message>[^\n]*)")


@dataclass(frozen=True)
class CliError:
    code: str
    operation: str
    message: str


class Cli:
    """``aws …`` against the stack, as root or as an IAM user; paths are absolute."""

    def __init__(self, stack: Stack, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.stack, self.workdir, self.env = stack, workdir, dict(env or {})

    def as_user(self, access_key_id: str, secret_access_key: str) -> Cli:
        return Cli(self.stack, self.workdir, {**self.env, "AWS_ACCESS_KEY_ID": access_key_id,
                                              "AWS_SECRET_ACCESS_KEY": secret_access_key})

    def with_env(self, **env: str) -> Cli:
        return Cli(self.stack, self.workdir, {**self.env, **env})

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.stack.aws(*args, check=check, **self.env)

    def json(self, *args: str) -> Any:
        out = self.run(*args).stdout
        return json.loads(out) if out.strip() else None

    def fails(self, *args: str) -> CliError:
        result = self.run(*args, check=False)
        assert result.returncode != 0, f"aws {' '.join(args)} succeeded: {result.stdout[:300]}"
        m = _CLI_ERROR.search(result.stderr)
        assert m, f"no AWS error in the CLI's output: {result.stderr[-500:]}"
        return CliError(m["code"], m["op"], m["message"].strip())

    def file(self, name: str, content: str | bytes | dict[str, Any]) -> Path:
        path = self.workdir / name
        if isinstance(content, dict):
            content = json.dumps(content, indent=2)
        if isinstance(content, str):
            content = content.encode()
        path.write_bytes(content)
        return path


@dataclass(frozen=True)
class User:
    arn: str
    cli: Cli


@dataclass(frozen=True)
class Key:
    key_id: str
    arn: str
    alias: str
    metadata: dict[str, Any]


# --- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(stack, tmp_path_factory.mktemp("lab-cli"))


@pytest.fixture(scope="module")
def user(cli: Cli, stack: Stack) -> Iterator[User]:
    created = cli.json("iam", "create-user", "--user-name", USER_NAME)["User"]
    try:
        policy = cli.file("user-policy.json", lab_user_policy([TRAIL_BUCKET, IMAGE_BUCKET]))
        cli.run("iam", "put-user-policy", "--user-name", USER_NAME, "--policy-name",
                "AWSLabsUserPolicy", "--policy-document", f"file://{policy}")
        key = cli.json("iam", "create-access-key", "--user-name", USER_NAME)["AccessKey"]
        yield User(created["Arn"], cli.as_user(key["AccessKeyId"], key["SecretAccessKey"]))
    finally:
        iam = stack.client("iam")

        def delete_keys() -> None:
            for k in iam.list_access_keys(UserName=USER_NAME)["AccessKeyMetadata"]:
                iam.delete_access_key(UserName=USER_NAME, AccessKeyId=k["AccessKeyId"])

        run_all(delete_keys,
                lambda: iam.delete_user_policy(UserName=USER_NAME, PolicyName="AWSLabsUserPolicy"),
                lambda: iam.delete_user(UserName=USER_NAME))


def _create_key(cli: Cli, user: User, alias: str, description: str | None) -> Key:
    policy = cli.file(f"key-policy-{alias.rsplit('/', 1)[1]}.json",
                      console_key_policy(admins=[ROOT_ARN], users=[user.arn]))
    args = ["kms", "create-key", "--policy", f"file://{policy}"]
    if description:
        args += ["--description", description]
    meta = cli.json(*args)["KeyMetadata"]
    out = cli.run("kms", "create-alias", "--alias-name", alias, "--target-key-id", meta["KeyId"])
    assert out.stdout.strip() == ""  # create-alias prints nothing
    return Key(meta["KeyId"], meta["Arn"], alias, meta)


def _delete_key(stack: Stack, key: Key) -> None:
    kms = stack.client("kms")
    run_all(lambda: kms.delete_alias(AliasName=key.alias),
            lambda: kms.schedule_key_deletion(KeyId=key.key_id, PendingWindowInDays=7))


@pytest.fixture(scope="module")
def key(cli: Cli, user: User, stack: Stack) -> Iterator[Key]:
    """Lab 001 task 1."""
    k = _create_key(cli, user, ALIAS, "KMS Key for S3 data")
    try:
        yield k
    finally:
        _delete_key(stack, k)


@pytest.fixture(scope="module")
def trail(cli: Cli, stack: Stack) -> Iterator[dict[str, Any]]:
    """Lab 001 task 2."""
    assert cli.run("s3", "mb", f"s3://{TRAIL_BUCKET}").stdout.strip() == f"make_bucket: {TRAIL_BUCKET}"
    try:
        policy = cli.file("trail-bucket-policy.json", cloudtrail_bucket_policy(TRAIL_BUCKET, TRAIL_NAME))
        cli.run("s3api", "put-bucket-policy", "--bucket", TRAIL_BUCKET, "--policy", f"file://{policy}")
        created = cli.json("cloudtrail", "create-trail", "--name", TRAIL_NAME, "--s3-bucket-name",
                           TRAIL_BUCKET, "--is-multi-region-trail")
        try:
            selectors = cli.file("event-selectors.json", json.dumps([{
                "ReadWriteType": "All", "IncludeManagementEvents": True,
                "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}]}]))
            cli.run("cloudtrail", "put-event-selectors", "--trail-name", TRAIL_NAME,
                    "--event-selectors", f"file://{selectors}")
            cli.run("cloudtrail", "put-insight-selectors", "--trail-name", TRAIL_NAME,
                    "--insight-selectors",
                    '[{"InsightType": "ApiCallRateInsight"}, {"InsightType": "ApiErrorRateInsight"}]')
            cli.run("cloudtrail", "start-logging", "--name", TRAIL_NAME)
            yield created
        finally:
            ct = stack.client("cloudtrail")
            run_all(lambda: ct.stop_logging(Name=TRAIL_NAME), lambda: ct.delete_trail(Name=TRAIL_NAME))
    finally:
        empty_and_delete_bucket(stack.client("s3"), TRAIL_BUCKET)


@pytest.fixture(scope="module")
def image(cli: Cli) -> tuple[Path, bytes]:
    body = make_png(seed=3)
    return cli.file("Eiffel.png", body), body


@pytest.fixture(scope="module")
def uploaded(trail: dict[str, Any], key: Key, user: User, image: tuple[Path, bytes]) -> dt.datetime:
    """Lab 001 task 3: ``aws s3 cp`` with SSE-KMS under the key, by the key user."""
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    out = user.cli.run("s3", "cp", str(image[0]), f"s3://{TRAIL_BUCKET}/{IMAGE_KEY}", "--no-progress",
                       "--sse", "aws:kms", "--sse-kms-key-id", key.key_id)
    assert re.search(rf"^upload: \S*{image[0].name} to s3://{TRAIL_BUCKET}/{IMAGE_KEY}$",
                     out.stdout, re.M), out.stdout
    return started


@pytest.fixture(scope="module")
def key2(cli: Cli, user: User, stack: Stack) -> Iterator[Key]:
    """Lab 002 task 1."""
    k = _create_key(cli, user, ALIAS2, None)
    try:
        yield k
    finally:
        _delete_key(stack, k)


@pytest.fixture(scope="module")
def image_bucket(cli: Cli, key2: Key, stack: Stack) -> Iterator[str]:
    cli.run("s3", "mb", f"s3://{IMAGE_BUCKET}")
    try:
        config = cli.file("bucket-encryption.json", {"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                   "KMSMasterKeyID": key2.arn},
            "BucketKeyEnabled": False}]})
        cli.run("s3api", "put-bucket-encryption", "--bucket", IMAGE_BUCKET,
                "--server-side-encryption-configuration", f"file://{config}")
        yield IMAGE_BUCKET
    finally:
        empty_and_delete_bucket(stack.client("s3"), IMAGE_BUCKET)


@pytest.fixture(scope="module")
def clock(cli: Cli, image_bucket: str, user: User) -> bytes:
    body = make_png(width=40, height=40, seed=4)
    path = cli.file("clock.png", body)
    user.cli.run("s3", "cp", str(path), f"s3://{image_bucket}/{CLOCK_KEY}", "--no-progress")
    return body


# --- lab 001 -------------------------------------------------------------------------------

def test_task1_create_key_alias_describe(cli: Cli, key: Key, user: User) -> None:
    assert key_arn_pattern().match(key.arn)
    described = cli.json("kms", "describe-key", "--key-id", ALIAS)["KeyMetadata"]
    assert described["KeyId"] == key.key_id
    assert described["Description"] == "KMS Key for S3 data"
    assert (described["KeyState"], described["Enabled"]) == ("Enabled", True)
    assert (described["KeySpec"], described["KeyUsage"]) == ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")
    assert described["KeyManager"] == "CUSTOMER"
    assert isinstance(described["CreationDate"], (int, float))  # CLI v1 prints epoch seconds
    aliases = cli.json("kms", "list-aliases", "--key-id", key.key_id)["Aliases"]
    assert [a["AliasName"] for a in aliases] == [ALIAS]
    policy = cli.json("kms", "get-key-policy", "--key-id", key.key_id, "--policy-name", "default")
    assert json.loads(policy["Policy"]) == console_key_policy(admins=[ROOT_ARN], users=[user.arn])


def test_task1_key_user_encrypts_and_decrypts(cli: Cli, key: Key, user: User) -> None:
    plain = cli.file("plain.txt", b"lab secret from the CLI\n")
    blob_b64 = user.cli.run("kms", "encrypt", "--key-id", ALIAS, "--plaintext", f"fileb://{plain}",
                            "--encryption-context", "purpose=lab",
                            "--query", "CiphertextBlob", "--output", "text").stdout.strip()
    blob = cli.file("secret.bin", base64.b64decode(blob_b64))
    out = user.cli.json("kms", "decrypt", "--ciphertext-blob", f"fileb://{blob}",
                        "--encryption-context", "purpose=lab")
    assert base64.b64decode(out["Plaintext"]) == plain.read_bytes()
    assert out["KeyId"] == key.arn
    # Without the encryption context the ciphertext does not open.
    err = user.cli.fails("kms", "decrypt", "--ciphertext-blob", f"fileb://{blob}")
    assert err.code == "InvalidCiphertextException"


def test_task2_trail_logging(cli: Cli, trail: dict[str, Any]) -> None:
    assert trail["TrailARN"] == trail_arn(TRAIL_NAME)
    assert trail["S3BucketName"] == TRAIL_BUCKET
    assert trail["IsMultiRegionTrail"] is True
    assert cli.json("cloudtrail", "get-trail-status", "--name", TRAIL_NAME)["IsLogging"] is True
    trails = cli.json("cloudtrail", "describe-trails", "--trail-name-list", TRAIL_NAME)["trailList"]
    assert [(t["Name"], t["S3BucketName"], t["HomeRegion"]) for t in trails] == [
        (TRAIL_NAME, TRAIL_BUCKET, REGION)]
    assert TRAIL_NAME in [t["Name"] for t in cli.json("cloudtrail", "list-trails")["Trails"]]


def test_task3_uploaded_image_is_sse_kms(cli: Cli, uploaded: dt.datetime, key: Key,
                                         image: tuple[Path, bytes]) -> None:
    head = cli.json("s3api", "head-object", "--bucket", TRAIL_BUCKET, "--key", IMAGE_KEY)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == key.arn
    assert head["ContentLength"] == len(image[1])
    listing = cli.run("s3", "ls", f"s3://{TRAIL_BUCKET}/").stdout
    assert re.search(rf"\s{len(image[1])} {re.escape(IMAGE_KEY)}$", listing, re.M), listing


def test_task4_open_as_owner_and_key_user(cli: Cli, user: User, uploaded: dt.datetime, key: Key,
                                          image: tuple[Path, bytes]) -> None:
    out = cli.workdir / "opened-by-user.png"
    meta = user.cli.json("s3api", "get-object", "--bucket", TRAIL_BUCKET, "--key", IMAGE_KEY, str(out))
    assert out.read_bytes() == image[1]
    assert (meta["ServerSideEncryption"], meta["SSEKMSKeyId"]) == ("aws:kms", key.arn)
    out2 = cli.workdir / "opened-by-owner.png"
    cli.run("s3", "cp", f"s3://{TRAIL_BUCKET}/{IMAGE_KEY}", str(out2), "--no-progress")
    assert out2.read_bytes() == image[1]


def test_task4_anonymous_access(cli: Cli, stack: Stack, uploaded: dt.datetime,
                                image: tuple[Path, bytes]) -> None:
    url = object_url(stack.endpoint, TRAIL_BUCKET, IMAGE_KEY)
    anon_out = str(cli.workdir / "anonymous.png")
    anonymous = ("s3api", "get-object", "--no-sign-request", "--bucket", TRAIL_BUCKET,
                 "--key", IMAGE_KEY, anon_out)
    denied = http_get(url)
    assert denied.status == 403
    assert (denied.error()["Code"], denied.error()["Message"]) == ("AccessDenied", "Access Denied")
    assert cli.fails(*anonymous) == CliError("AccessDenied", "GetObject", "Access Denied")

    cfg = cli.json("s3api", "get-public-access-block", "--bucket", TRAIL_BUCKET)
    assert all(cfg["PublicAccessBlockConfiguration"].values())
    try:
        cli.run("s3api", "put-public-access-block", "--bucket", TRAIL_BUCKET,
                "--public-access-block-configuration",
                "BlockPublicAcls=false,IgnorePublicAcls=false,BlockPublicPolicy=false,"
                "RestrictPublicBuckets=false")
        err = cli.fails("s3api", "put-object-acl", "--bucket", TRAIL_BUCKET, "--key", IMAGE_KEY,
                        "--acl", "public-read")
        assert err == CliError("AccessControlListNotSupported", "PutObjectAcl",
                               "The bucket does not allow ACLs")
        cli.run("s3api", "put-bucket-ownership-controls", "--bucket", TRAIL_BUCKET,
                "--ownership-controls", "Rules=[{ObjectOwnership=BucketOwnerPreferred}]")
        cli.run("s3api", "put-object-acl", "--bucket", TRAIL_BUCKET, "--key", IMAGE_KEY,
                "--acl", "public-read")

        answer = http_get(url)
        assert answer.status == 400
        error = answer.error()
        assert list(error) == ["Code", "Message", "ArgumentName", "ArgumentValue", "RequestId",
                               "HostId"]
        assert (error["Code"], error["Message"]) == ("InvalidArgument", SIGV4_REQUIRED)
        assert (error["ArgumentName"], error["ArgumentValue"]) == ("Authorization", "null")
        assert image[1] not in answer.body
        # CLI v1 recognises AWS's error and adds its hint (aws-cli#1638).
        assert cli.fails(*anonymous) == CliError(
            "InvalidArgument", "GetObject",
            SIGV4_REQUIRED + " You can enable AWS Signature Version 4 by running the command:")
        assert not os.path.exists(anon_out) or os.path.getsize(anon_out) == 0
    finally:
        run_all(
            lambda: cli.run("s3api", "put-object-acl", "--bucket", TRAIL_BUCKET, "--key", IMAGE_KEY,
                            "--acl", "private"),
            lambda: cli.run("s3api", "put-bucket-ownership-controls", "--bucket", TRAIL_BUCKET,
                            "--ownership-controls", "Rules=[{ObjectOwnership=BucketOwnerEnforced}]"),
            lambda: cli.run("s3api", "put-public-access-block", "--bucket", TRAIL_BUCKET,
                            "--public-access-block-configuration",
                            "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,"
                            "RestrictPublicBuckets=true"))


def test_task4_presigned_urls(cli: Cli, user: User, uploaded: dt.datetime,
                              image: tuple[Path, bytes]) -> None:
    target = f"s3://{TRAIL_BUCKET}/{IMAGE_KEY}"
    # CLI v1 presigns with SigV2 by default: refused for an SSE-KMS object (aws-cli#1638).
    v2_url = user.cli.run("s3", "presign", target, "--expires-in", "300").stdout.strip()
    assert "Signature=" in v2_url and "X-Amz-Algorithm" not in v2_url
    answer = http_get(v2_url)
    assert answer.status == 400
    assert (answer.error()["Code"], answer.error()["Message"]) == ("InvalidArgument", SIGV4_REQUIRED)
    # The documented fix: `aws configure set default.s3.signature_version s3v4`.
    config = cli.file("aws-config-s3v4", "[default]\ns3 =\n    signature_version = s3v4\n")
    v4 = user.cli.with_env(AWS_CONFIG_FILE=str(config))
    v4_url = v4.run("s3", "presign", target, "--expires-in", "300").stdout.strip()
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in v4_url
    answer = http_get(v4_url)
    assert answer.status == 200
    assert answer.body == image[1]


def _lookup(cli: Cli, event_name: str, since: dt.datetime, key_arn: str,
            object_arn: str) -> dict[str, Any] | None:
    events = cli.json("cloudtrail", "lookup-events", "--lookup-attributes",
                      f"AttributeKey=EventName,AttributeValue={event_name}",
                      "--start-time", since.strftime("%Y-%m-%dT%H:%M:%SZ"))["Events"]
    for event in events:
        if is_s3_kms_record(json.loads(event["CloudTrailEvent"]), event_name, key_arn, object_arn):
            return event
    return None


def test_task5_lookup_events(cli: Cli, user: User, uploaded: dt.datetime, key: Key) -> None:
    object_arn = f"arn:aws:s3:::{TRAIL_BUCKET}/{IMAGE_KEY}"
    user.cli.run("s3", "cp", f"s3://{TRAIL_BUCKET}/{IMAGE_KEY}", str(cli.workdir / "again.png"),
                 "--no-progress")
    for event_name in ("GenerateDataKey", "Decrypt"):
        event = poll(lambda name=event_name: _lookup(cli, name, uploaded, key.arn, object_arn),
                     timeout=EVENT_LOOKUP_TIMEOUT, interval=1.0, what=f"{event_name} in lookup-events")
        assert event["EventSource"] == "kms.amazonaws.com"
        assert event["Username"] == USER_NAME
        assert {"ResourceType": "AWS::KMS::Key", "ResourceName": key.arn} in event["Resources"]
        check_s3_kms_record(json.loads(event["CloudTrailEvent"]), event_name=event_name,
                            key_arn=key.arn, object_arn=object_arn, user_arn=user.arn)


def test_task5_read_the_delivered_log_file(cli: Cli, user: User, uploaded: dt.datetime,
                                           key: Key) -> None:
    object_arn = f"arn:aws:s3:::{TRAIL_BUCKET}/{IMAGE_KEY}"
    fetched: dict[str, list[dict[str, Any]]] = {}

    def find() -> dict[str, Any] | None:
        listing = cli.run("s3", "ls", f"s3://{TRAIL_BUCKET}/{LOG_PREFIX}", "--recursive",
                          check=False)
        keys = re.findall(r"\s(AWSLogs/\S+)$", listing.stdout, re.M)
        for log_key in keys:
            if log_key not in fetched:
                check_log_key(log_key)
                local = cli.workdir / log_key.rsplit("/", 1)[1]
                cli.run("s3", "cp", f"s3://{TRAIL_BUCKET}/{log_key}", str(local), "--no-progress")
                fetched[log_key] = json.loads(gzip.decompress(local.read_bytes()))["Records"]
            for record in fetched[log_key]:
                if is_s3_kms_record(record, "GenerateDataKey", key.arn, object_arn):
                    return record
        return None

    record = poll(find, timeout=TRAIL_DELIVERY_TIMEOUT, interval=1.0,
                  what="the GenerateDataKey record in a delivered .json.gz")
    check_s3_kms_record(record, event_name="GenerateDataKey", key_arn=key.arn,
                        object_arn=object_arn, user_arn=user.arn)


def test_task6_remove_and_add_back_the_key_user(cli: Cli, user: User, uploaded: dt.datetime,
                                                key: Key, image: tuple[Path, bytes]) -> None:
    with_user = cli.file("policy-with-user.json", console_key_policy([ROOT_ARN], [user.arn]))
    without = cli.file("policy-without-user.json", console_key_policy([ROOT_ARN], []))
    plain = cli.file("task6.txt", b"task 6")
    out = cli.workdir / "task6.png"
    get = ("s3api", "get-object", "--bucket", TRAIL_BUCKET, "--key", IMAGE_KEY, str(out))
    try:
        cli.run("kms", "put-key-policy", "--key-id", key.key_id, "--policy-name", "default",
                "--policy", f"file://{without}")
        err = user.cli.fails(*get)
        assert (err.code, err.operation) == ("AccessDenied", "GetObject")
        assert err.message == access_denied_message(user.arn, "kms:Decrypt", key.arn)
        err = user.cli.fails("kms", "encrypt", "--key-id", key.arn, "--plaintext", f"fileb://{plain}")
        assert err.code == "AccessDeniedException"
        assert err.message == access_denied_message(user.arn, "kms:Encrypt", key.arn)

        cli.run("kms", "put-key-policy", "--key-id", key.key_id, "--policy-name", "default",
                "--policy", f"file://{with_user}")
        user.cli.run(*get)
        assert out.read_bytes() == image[1]
        assert user.cli.json("kms", "encrypt", "--key-id", key.arn, "--plaintext",
                             f"fileb://{plain}")["KeyId"] == key.arn
    finally:
        cli.run("kms", "put-key-policy", "--key-id", key.key_id, "--policy-name", "default",
                "--policy", f"file://{with_user}")


# --- lab 002 -------------------------------------------------------------------------------

def test_lab2_bucket_default_encryption(cli: Cli, user: User, image_bucket: str, clock: bytes,
                                        key2: Key) -> None:
    conf = cli.json("s3api", "get-bucket-encryption", "--bucket", image_bucket)
    rule = conf["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms",
                                                          "KMSMasterKeyID": key2.arn}
    head = user.cli.json("s3api", "head-object", "--bucket", image_bucket, "--key", CLOCK_KEY)
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key2.arn)


def test_lab2_disable_and_enable_the_key(cli: Cli, user: User, image_bucket: str, clock: bytes,
                                         key2: Key) -> None:
    out = cli.workdir / "clock-out.png"
    plain = cli.file("lab2.txt", b"lab 2")
    disabled = f"{key2.arn} is disabled."
    try:
        assert cli.run("kms", "disable-key", "--key-id", key2.key_id).stdout.strip() == ""
        meta = cli.json("kms", "describe-key", "--key-id", ALIAS2)["KeyMetadata"]
        assert (meta["KeyState"], meta["Enabled"]) == ("Disabled", False)
        err = user.cli.fails("s3api", "get-object", "--bucket", image_bucket, "--key", CLOCK_KEY,
                             str(out))
        assert err == CliError("KMS.DisabledException", "GetObject", disabled)
        err = cli.fails("kms", "encrypt", "--key-id", ALIAS2, "--plaintext", f"fileb://{plain}")
        assert err == CliError("DisabledException", "Encrypt", disabled)

        assert cli.run("kms", "enable-key", "--key-id", key2.key_id).stdout.strip() == ""
        user.cli.run("s3", "cp", f"s3://{image_bucket}/{CLOCK_KEY}", str(out), "--no-progress")
        assert out.read_bytes() == clock
    finally:
        cli.run("kms", "enable-key", "--key-id", key2.key_id)


def test_cli_multipart_upload_with_sse_kms(cli: Cli, image_bucket: str, key: Key) -> None:
    size = 20 * MiB + 777
    data = os.urandom(size)
    src = cli.file("big.bin", data)
    dst = cli.workdir / "big.out"
    target = f"s3://{image_bucket}/multipart/big.bin"
    try:
        cli.run("s3", "cp", str(src), target, "--no-progress", "--sse", "aws:kms",
                "--sse-kms-key-id", key.arn)
        head = cli.json("s3api", "head-object", "--bucket", image_bucket, "--key", "multipart/big.bin")
        assert head["ContentLength"] == size
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key.arn)
        assert re.fullmatch(r'"[0-9a-f]{32}-3"', head["ETag"]), head["ETag"]  # 8 MiB parts
        cli.run("s3", "cp", target, str(dst), "--no-progress")
        assert hashlib.sha256(dst.read_bytes()).digest() == hashlib.sha256(data).digest()
    finally:
        cli.run("s3", "rm", target, check=False)
