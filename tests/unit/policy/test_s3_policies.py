"""S3 bucket policies (public read, CloudTrail delivery, TLS-only), following
https://docs.aws.amazon.com/AmazonS3/latest/userguide/example-bucket-policies.html and
https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-s3-bucket-policy-for-cloudtrail.html"""

from __future__ import annotations

import json

from common.policy import Decision, evaluate, parse_policy

from .helpers import ACCT, ANON, OTHER, allow, pol, req, service, user

BUCKET = "amzn-s3-demo-bucket"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
TRAIL = f"arn:aws:cloudtrail:us-east-1:{ACCT}:trail/management-events"

CLOUDTRAIL_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AWSCloudTrailAclCheck20150319",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:GetBucketAcl",
                "Resource": BUCKET_ARN,
                "Condition": {"StringEquals": {"aws:SourceArn": TRAIL}},
            },
            {
                "Sid": "AWSCloudTrailWrite20150319",
                "Effect": "Allow",
                "Principal": {"Service": "cloudtrail.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": f"{BUCKET_ARN}/AWSLogs/{ACCT}/*",
                "Condition": {
                    "StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": TRAIL}
                },
            },
        ],
    }
)

PUBLIC_READ = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublicRead",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "Resource": [f"{BUCKET_ARN}/*"],
            },
            {
                "Sid": "TLSOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [BUCKET_ARN, f"{BUCKET_ARN}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "OfficeOnlyWrites",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"{BUCKET_ARN}/*",
                "Condition": {"NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/32"]}},
            },
        ],
    }
)


def test_cloudtrail_bucket_policy() -> None:
    bp = parse_policy(CLOUDTRAIL_POLICY, policy_type="resource")
    ct = service("cloudtrail.amazonaws.com")
    obj = f"{BUCKET_ARN}/AWSLogs/{ACCT}/CloudTrail/us-east-1/2024/01/01/log.json.gz"
    put_ctx = {"aws:SourceArn": TRAIL, "s3:x-amz-acl": "bucket-owner-full-control"}
    assert evaluate(req(ct, "s3:GetBucketAcl", BUCKET_ARN, {"aws:SourceArn": TRAIL}), resource_policy=bp, resource_account=ACCT) is Decision.ALLOW
    assert evaluate(req(ct, "s3:PutObject", obj, put_ctx), resource_policy=bp, resource_account=ACCT) is Decision.ALLOW
    # Confused deputy protection: another account's trail is refused.
    foreign = {**put_ctx, "aws:SourceArn": f"arn:aws:cloudtrail:us-east-1:{OTHER}:trail/x"}
    assert evaluate(req(ct, "s3:PutObject", obj, foreign), resource_policy=bp, resource_account=ACCT) is Decision.IMPLICIT_DENY
    assert evaluate(req(ct, "s3:PutObject", obj, {"s3:x-amz-acl": "bucket-owner-full-control"}), resource_policy=bp, resource_account=ACCT) is Decision.IMPLICIT_DENY
    assert evaluate(req(ct, "s3:PutObject", obj, {**put_ctx, "s3:x-amz-acl": "private"}), resource_policy=bp, resource_account=ACCT) is Decision.IMPLICIT_DENY
    # Outside the AWSLogs/<account>/ prefix.
    assert evaluate(req(ct, "s3:PutObject", f"{BUCKET_ARN}/other/x", put_ctx), resource_policy=bp, resource_account=ACCT) is Decision.IMPLICIT_DENY
    # Other services and users are not matched by the service principal.
    assert evaluate(req(service("config.amazonaws.com"), "s3:PutObject", obj, put_ctx), resource_policy=bp, resource_account=ACCT) is Decision.IMPLICIT_DENY
    assert evaluate(req(user(), "s3:PutObject", obj, put_ctx), resource_policy=bp, resource_account=ACCT) is Decision.IMPLICIT_DENY


def test_public_read_bucket_policy() -> None:
    bp = parse_policy(PUBLIC_READ, policy_type="resource")
    obj = f"{BUCKET_ARN}/index.html"
    tls = {"aws:SecureTransport": True, "aws:SourceIp": "198.51.100.7"}
    assert evaluate(req(ANON, "s3:GetObject", obj, tls), resource_policy=bp, resource_account=ACCT) is Decision.ALLOW
    assert evaluate(req(user(account=OTHER), "s3:GetObject", obj, tls), resource_policy=bp, resource_account=ACCT) is Decision.IMPLICIT_DENY  # cross-account needs IAM allow too
    assert evaluate(req(user(account=OTHER), "s3:GetObject", obj, tls), resource_policy=bp, identity_policies=[pol(allow("s3:GetObject"))], resource_account=ACCT) is Decision.ALLOW
    assert evaluate(req(user(), "s3:GetObject", obj, tls), resource_policy=bp, resource_account=ACCT) is Decision.ALLOW
    assert evaluate(req(ANON, "s3:ListBucket", BUCKET_ARN, tls), resource_policy=bp, resource_account=ACCT) is Decision.IMPLICIT_DENY
    assert evaluate(req(ANON, "s3:GetObject", obj, {**tls, "aws:SecureTransport": False}), resource_policy=bp, resource_account=ACCT) is Decision.EXPLICIT_DENY


def test_bucket_policy_ip_restriction() -> None:
    bp = parse_policy(PUBLIC_READ)
    writer = pol(allow("s3:PutObject", f"{BUCKET_ARN}/*"))
    obj = f"{BUCKET_ARN}/upload.bin"
    base = {"aws:SecureTransport": True}
    for ip, expected in (
        ("192.0.2.44", Decision.ALLOW),
        ("2001:db8:ffff::1", Decision.ALLOW),
        ("203.0.113.1", Decision.EXPLICIT_DENY),
        ("2001:db9::1", Decision.EXPLICIT_DENY),
    ):
        r = req(user(), "s3:PutObject", obj, {**base, "aws:SourceIp": ip})
        assert evaluate(r, identity_policies=[writer], resource_policy=bp, resource_account=ACCT) is expected, ip
    # No source IP at all: NotIpAddress on a missing key is true -> deny.
    r = req(user(), "s3:PutObject", obj, base)
    assert evaluate(r, identity_policies=[writer], resource_policy=bp, resource_account=ACCT) is Decision.EXPLICIT_DENY


def test_bucket_policy_home_directories_with_variables() -> None:
    # ACCT's bucket delegates per-user home directories to account OTHER.
    bp = pol(
        allow("s3:ListBucket", BUCKET_ARN, Principal={"AWS": OTHER},
              Condition={"StringLike": {"s3:prefix": ["", "home/", "home/${aws:username}/*"]}}),
        allow(["s3:GetObject", "s3:PutObject"], f"{BUCKET_ARN}/home/${{aws:username}}/*", Principal={"AWS": OTHER}),
    )
    ident = pol(allow("s3:*", [BUCKET_ARN, f"{BUCKET_ARN}/*"]))
    bob = user("bob", account=OTHER)

    def decide(action: str, resource: str, ctx: dict[str, object] | None = None, with_iam: bool = True) -> Decision:
        return evaluate(req(bob, action, resource, ctx), resource_policy=bp,
                        identity_policies=[ident] if with_iam else [], resource_account=ACCT)

    assert decide("s3:GetObject", f"{BUCKET_ARN}/home/bob/a") is Decision.ALLOW
    assert decide("s3:GetObject", f"{BUCKET_ARN}/home/bob/a", with_iam=False) is Decision.IMPLICIT_DENY
    assert decide("s3:GetObject", f"{BUCKET_ARN}/home/alice/a") is Decision.IMPLICIT_DENY
    assert decide("s3:DeleteObject", f"{BUCKET_ARN}/home/bob/a") is Decision.IMPLICIT_DENY
    assert decide("s3:ListBucket", BUCKET_ARN, {"s3:prefix": "home/bob/x"}) is Decision.ALLOW
    assert decide("s3:ListBucket", BUCKET_ARN, {"s3:prefix": ""}) is Decision.ALLOW
    assert decide("s3:ListBucket", BUCKET_ARN, {"s3:prefix": "home/alice/"}) is Decision.IMPLICIT_DENY
    # Users of ACCT itself are covered by their own identity policies.
    assert evaluate(req(user("carol"), "s3:GetObject", f"{BUCKET_ARN}/home/bob/a"), resource_policy=bp,
                    identity_policies=[ident], resource_account=ACCT) is Decision.ALLOW
