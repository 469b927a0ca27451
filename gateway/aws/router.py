"""Which AWS service (and protocol) a request is for, from what AWS clients send.

In order:

1. ``X-Amz-Target: <prefix>.<Operation>`` -> the JSON 1.1 service owning the prefix
   (``TrentService`` = KMS; ``CloudTrail_20131101`` and botocore's
   ``com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101`` = CloudTrail).
2. The SigV4 credential scope's service (``Authorization: AWS4-HMAC-SHA256
   Credential=AKID/date/region/<service>/aws4_request`` or the ``X-Amz-Credential`` query
   parameter): ``kms``, ``cloudtrail`` (JSON), ``iam``, ``sts`` (Query), ``s3``. A SigV2
   header (``AWS AKID:sig``) is S3.
3. A Query ``Action`` in the query string or, for a form-encoded POST, in the body
   (:func:`route_query` once the body is read): ``Version`` 2010-05-08 = IAM, 2011-06-15 =
   STS, else by which service has the action.
4. Everything else is S3: virtual-hosted-style when the Host is ``<bucket>.localhost``,
   ``<bucket>.s3.localhost``, ``<bucket>.s3.<region>.localhost`` or
   ``<bucket>.s3[.-]<region>.amazonaws.com``; path-style otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

JSON = "json"
QUERY = "query"
REST_XML = "rest-xml"

#: X-Amz-Target prefix -> service
TARGET_PREFIXES: dict[str, str] = {
    "TrentService": "kms",
    "CloudTrail_20131101": "cloudtrail",
    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101": "cloudtrail",
}
#: credential-scope service -> (service, protocol)
SCOPE_SERVICES: dict[str, tuple[str, str]] = {
    "kms": ("kms", JSON),
    "cloudtrail": ("cloudtrail", JSON),
    "iam": ("iam", QUERY),
    "sts": ("sts", QUERY),
    "s3": ("s3", REST_XML),
}
QUERY_VERSIONS: dict[str, str] = {"2010-05-08": "iam", "2011-06-15": "sts"}
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class Route:
    service: str               # "kms" | "cloudtrail" | "iam" | "sts" | "s3" | "" (unknown)
    protocol: str              # JSON | QUERY | REST_XML
    operation: str | None = None
    bucket: str | None = None  # S3 virtual-hosted-style bucket
    needs_body: bool = False   # Query: the Action is in the form body (see route_query)


def scope_service(headers: Mapping[str, str], query: Sequence[tuple[str, str]]) -> str | None:
    """The service named by the request's signature, if any."""
    auth = headers.get("Authorization") or headers.get("authorization")
    if auth:
        if auth.startswith("AWS4-"):
            i = auth.find("Credential=")
            if i >= 0:
                cred = auth[i + 11:].split(",", 1)[0].strip()
                parts = cred.split("/")
                if len(parts) == 5:
                    return parts[3]
            return None
        if auth.startswith("AWS "):
            return "s3"
        return None
    for name, value in query:
        if name == "X-Amz-Credential":
            parts = value.split("/")
            return parts[3] if len(parts) == 5 else None
        if name in ("AWSAccessKeyId", "Signature") and any(n == "Expires" for n, _ in query):
            return "s3"  # SigV2 presigned
    return None


_S3_LABEL = re.compile(r"^(?P<bucket>.+?)\.s3(?:[.-][a-z0-9-]+)?(?:\.dualstack\.[a-z0-9-]+)?$")


def virtual_host_bucket(host: str) -> str | None:
    """The bucket of a virtual-hosted-style S3 Host header, else None."""
    if not host:
        return None
    if host.startswith("["):
        return None  # IPv6 literal
    name = host.rsplit(":", 1)[0].lower() if host.count(":") == 1 else host.lower()
    for suffix, needs_s3_label in ((".localhost", False), (".amazonaws.com", True)):
        if name.endswith(suffix):
            prefix = name[: -len(suffix)]
            if not prefix or prefix == "s3" or prefix.startswith(("s3.", "s3-")):
                return None
            m = _S3_LABEL.match(prefix)
            if m is not None:
                return m.group("bucket")
            return None if needs_s3_label else prefix
    return None


def classify(method: str, headers: Mapping[str, str], query: Sequence[tuple[str, str]],
             host: str) -> Route:
    target = headers.get("X-Amz-Target") or headers.get("x-amz-target")
    if target:
        prefix, _, op = target.rpartition(".")
        return Route(TARGET_PREFIXES.get(prefix, ""), JSON, op or None)

    scope = scope_service(headers, query)
    if scope is not None and scope in SCOPE_SERVICES:
        service, protocol = SCOPE_SERVICES[scope]
        if protocol == REST_XML:
            return Route("s3", REST_XML, bucket=virtual_host_bucket(host))
        if protocol == JSON:
            return Route(service, JSON, None)
        action = param(query, "Action")
        if action is not None:
            return Route(service, QUERY, action)
        return Route(service, QUERY, None, needs_body=is_form(method, headers))

    bucket = virtual_host_bucket(host)
    if bucket is None:
        action = param(query, "Action")
        if action is not None:
            return route_query(query)
        if is_form(method, headers) and scope is None:
            return Route("", QUERY, None, needs_body=True)
    return Route("s3", REST_XML, bucket=bucket)


def route_query(params: Sequence[tuple[str, str]], service: str = "") -> Route:
    """Route a Query request once its parameters (query string + form body) are known."""
    action = param(params, "Action")
    if service:
        return Route(service, QUERY, action)
    version = param(params, "Version")
    svc = QUERY_VERSIONS.get(version or "")
    if svc is None:
        from gateway.aws import spec

        svc = "sts" if action in spec.load("sts").operation_names else "iam"
    return Route(svc, QUERY, action)


def param(params: Sequence[tuple[str, str]], name: str) -> str | None:
    for k, v in params:
        if k == name:
            return v
    return None


def is_form(method: str, headers: Mapping[str, str]) -> bool:
    if method != "POST":
        return False
    ctype = headers.get("Content-Type") or headers.get("content-type") or ""
    return ctype.split(";", 1)[0].strip().lower() == FORM_CONTENT_TYPE
