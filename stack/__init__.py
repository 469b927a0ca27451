"""Runs the whole stack: kms, s3, trail and the gateway as supervised child processes."""
