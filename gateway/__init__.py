"""The Strongroom gateway: one HTTP endpoint that AWS clients talk to (``python -m gateway``).

* app.py           the aiohttp application: routing, auth, the three protocol pipelines, health
* context.py       RequestContext, what the S3 backend receives per request
* caller.py        the strongroom.common.v1.Caller sent with every RPC
* audit.py         CloudTrail records for IAM/STS calls
* aws/             botocore-model-driven protocol layer: spec, router, validate, shapes,
                   protocols/{json,query,rest_xml,s3_error}
* backends/        operation -> implementation bindings: kms, cloudtrail (gRPC), iam, sts (local),
                   s3 (REST-XML handler)
* iam/             identities: IAM users, roles, keys, inline policies, STS sessions (SQLite)
* auth/            request signature verification (SigV4, SigV2, presigned, chunked)
"""
