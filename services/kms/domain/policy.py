"""Key policies: AWS's default key policy, AWS managed key policies, and the KMS action names.

Default key policy: https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
(the single "Enable IAM User Permissions" statement for keys made with the API).
"""

from __future__ import annotations

import json

POLICY_NAME = "default"
MAX_POLICY_BYTES = 32 * 1024

# Operations authorised by IAM policies only (no key exists, or the resource is not a key).
IAM_ONLY_ACTIONS = frozenset({"kms:CreateKey", "kms:ListKeys", "kms:ListAliases", "kms:GenerateRandom",
                              "kms:ListRetirableGrants", "kms:DescribeCustomKeyStores"})

# AWS managed key descriptions as AWS writes them.
MANAGED_DESCRIPTIONS = {
    "s3": "Default key that protects my S3 objects when no other key is defined",
    "ebs": "Default key that protects my EBS volumes when no other key is defined",
}
# Predefined AWS managed aliases listed by ListAliases even before their key exists.
PREDEFINED_MANAGED_ALIASES = ("alias/aws/dynamodb", "alias/aws/ebs", "alias/aws/elasticfilesystem",
                              "alias/aws/es", "alias/aws/glue", "alias/aws/kinesisvideo",
                              "alias/aws/lambda", "alias/aws/rds", "alias/aws/redshift", "alias/aws/s3",
                              "alias/aws/secretsmanager", "alias/aws/ssm", "alias/aws/xray")


def default_key_policy(account: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }],
    }, indent=2)


def aws_managed_key_policy(account: str, region: str, service: str) -> str:
    """The policy AWS gives an AWS managed key (e.g. aws/s3): use only through the service."""
    return json.dumps({
        "Version": "2012-10-17",
        "Id": f"auto-{service}-2",
        "Statement": [
            {
                "Sid": f"Allow access through {service.upper()} for all principals in the account "
                       f"that are authorized to use {service.upper()}",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                           "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:CallerAccount": account,
                                               "kms:ViaService": f"{service}.{region}.amazonaws.com"}},
            },
            {
                "Sid": "Allow direct access to key metadata to the account",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": ["kms:Describe*", "kms:Get*", "kms:List*"],
                "Resource": "*",
            },
        ],
    }, indent=2)
