"""The trail service's use cases (one method per AWS operation, plus ``put_events``).

Transport-free: api.py turns protobuf into these calls and back. Errors are raised as the
CloudTrail AwsErrors of services/trail/domain/errors.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from common.audit_index import IDENTITY
from common.config import Settings
from common.errors import AwsError, ServiceUnavailable
from common.logging import get_logger
from common.policy import AuthzRequest, MalformedPolicyError, Principal, evaluate, parse_policy
from services.trail.domain import lookup as lookup_domain
from services.trail.domain import selectors as sel
from services.trail.domain.errors import err
from services.trail.domain.event import (
    CATEGORY_MANAGEMENT,
    EventBatch,
    IndexColumns,
    IndexEntry,
    InvalidRecord,
    from_index,
    index_record,
)
from services.trail.domain.insights import InsightDetector
from services.trail.domain.logfile import iso, log_prefix
from services.trail.domain.trails import (
    MAX_TRAILS_PER_REGION,
    Trail,
    parse_name_or_arn,
    trail_arn,
    validate_bucket_name,
    validate_key_prefix,
    validate_kms_key_id,
    validate_tags,
    validate_trail_name,
)
from services.trail.ports import DigestSigner, KeyService, ObjectStore, Unavailable
from services.trail.store.sqlite import EventRow, TrailStore

log = get_logger(__name__)

CLOUDTRAIL = "cloudtrail.amazonaws.com"


@dataclass(frozen=True, slots=True)
class LookupResult:
    events: list[tuple[EventRow, tuple[tuple[str, str], ...]]]  # row, (type, name) resources
    next_token: str | None


@dataclass(frozen=True, slots=True)
class PublicKeyInfo:
    value: bytes
    fingerprint: str
    valid_from: datetime
    valid_to: datetime | None


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class TrailService:
    def __init__(
        self,
        settings: Settings,
        store: TrailStore,
        *,
        objects: ObjectStore,
        keys: KeyService,
        signer: DigestSigner | None,
        clock: Callable[[], datetime] = _utc_now,
        on_trails_changed: Callable[[], None] | None = None,
        insights: InsightDetector | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.objects = objects
        self.keys = keys
        self.signer = signer
        self.clock = clock
        self.account_id = settings.account_id
        self.region = settings.region
        self._on_trails_changed = on_trails_changed or (lambda: None)
        self._token_secret: bytes | None = None
        self.insights = insights

    # ------------------------------------------------------------------ ingest

    async def put_events(
        self,
        records: Sequence[tuple[str, str]],
        indexed_records: Sequence[tuple[IndexEntry, str]] = (),
    ) -> tuple[int, int, list[str]]:
        """Store records: (event id, JSON text) pairs, decoded and indexed here, and (index,
        JSON text) pairs whose sender computed the index (common.audit_index.index_of).
        Returns (accepted, duplicates, rejected event ids)."""
        entries: list[IndexEntry] = []
        bodies: list[str] = []
        rejected: list[str] = []
        for event_id, body in records:
            try:
                event = index_record(body, event_id or None)
            except InvalidRecord as exc:
                log.error("audit_record_rejected", event_id=event_id, reason=str(exc))
                rejected.append(event_id)
                continue
            entries.append(event.entry)
            bodies.append(event.body)
        for entry, body in indexed_records:
            try:
                event = from_index(entry, body)
            except InvalidRecord as exc:
                log.error("audit_record_rejected", event_id=entry.event_id, reason=str(exc))
                rejected.append(entry.event_id)
                continue
            entries.append(event.entry)
            bodies.append(event.body)
        if not entries:
            return 0, 0, rejected
        # Stored as one batch, one record per line: JSON allows a line break only as
        # whitespace between tokens, so a record printed over several lines keeps its meaning.
        data = "\n".join(b.replace("\n", " ") for b in bodies).encode()
        accepted, duplicates = await self.put_batches([EventBatch(IDENTITY, data, IndexColumns.of(entries))])
        return accepted, duplicates, rejected

    async def put_batches(self, batches: Sequence[EventBatch]) -> tuple[int, int]:
        """Store batches as senders' outboxes ship them (records and their index, stored as
        they came). Returns (accepted, duplicates)."""
        new = await self.store.put_batches(batches)
        accepted = 0
        for batch, positions in zip(batches, new, strict=True):
            accepted += len(positions)
            if self.insights is not None and positions:
                self._count_for_insights(batch.index, positions)
        return accepted, sum(len(b.index.event_ids) for b in batches) - accepted

    def _count_for_insights(self, cols: IndexColumns, positions: Sequence[int]) -> None:
        """Count new management events per API for Insights; records of one API in the same
        second are counted together (their keys are tallied in C, not one call each)."""
        assert self.insights is not None
        keys: Any
        if len(positions) == len(cols.event_ids):
            keys = zip(cols.categories, cols.event_sources, cols.event_names, cols.read_only,
                       cols.error_codes, cols.event_times_ms)
        else:
            keys = ((cols.categories[i], cols.event_sources[i], cols.event_names[i], cols.read_only[i],
                     cols.error_codes[i], cols.event_times_ms[i]) for i in positions)
        count = self.insights.count
        for (category, source, name, read_only, error_code, time_ms), n in Counter(keys).items():
            if category == CATEGORY_MANAGEMENT:
                count(source, name, read_only=read_only is not False, failed=bool(error_code),
                      time_ms=time_ms, n=n)

    # ------------------------------------------------------------------ insights

    async def load_insight_history(self) -> None:
        """Rebuild the Insights baselines from stored records (after a restart)."""
        det = self.insights
        if det is None:
            return
        bucket_ms = int(det.bucket_seconds * 1000)
        now_ms = int(self.clock().timestamp() * 1000)
        since = now_ms - (det.baseline_buckets + 1) * bucket_ms
        for source, name, read_only, failed, bucket, count in await self.store.management_counts(
            since, bucket_ms
        ):
            synthetic = {
                "eventSource": source,
                "eventName": name,
                "readOnly": read_only,
                "errorCode": "x" if failed else None,
            }
            det.observe(synthetic, bucket * bucket_ms, count)
        det.last_evaluated = det.bucket_of(now_ms) - 1

    async def evaluate_insights(self) -> int:
        """Emit the Insights events of completed buckets, for the types a trail asks for."""
        det = self.insights
        if det is None:
            return 0
        records = det.evaluate(self.clock())
        if not records:
            return 0
        wanted = {s["InsightType"] for t in await self.store.list_trails() for s in t.insight_selectors}
        chosen = [r for r in records if r["insightDetails"]["insightType"] in wanted]
        if chosen:
            import json as _json

            await self.put_events([(r["eventID"], _json.dumps(r, separators=(",", ":"))) for r in chosen])
        return len(chosen)

    # ------------------------------------------------------------------ event history

    async def _secret(self) -> bytes:
        if self._token_secret is None:
            self._token_secret = await self.store.secret("lookup_token_key")
        return self._token_secret

    async def lookup_events(
        self,
        *,
        attributes: list[tuple[str, str]],
        start: datetime | None,
        end: datetime | None,
        event_category: str,
        max_results: int | None,
        next_token: str,
    ) -> LookupResult:
        now_ms = int(self.clock().timestamp() * 1000)
        query = lookup_domain.build_query(
            attributes=attributes,
            start=start,
            end=end,
            event_category=event_category,
            max_results=max_results,
            now_ms=now_ms,
        )
        secret = await self._secret()
        after = lookup_domain.decode_token(secret, query, next_token) if next_token else None
        rows = await self.store.lookup(query, after, query.max_results + 1)
        token = None
        if len(rows) > query.max_results:
            rows = rows[: query.max_results]
            last = rows[-1]
            token = lookup_domain.encode_token(
                secret, query, lookup_domain.Position(event_time_ms=last.event_time_ms, seq=last.seq)
            )
        out = []
        for row in rows:
            try:
                resources = tuple((r.type, r.name) for r in index_record(row.body).resources)
            except ValueError:
                resources = ()
            out.append((row, resources))
        return LookupResult(events=out, next_token=token)

    # ------------------------------------------------------------------ trails

    async def _trail(self, name_or_arn: str) -> Trail:
        name = parse_name_or_arn(name_or_arn, account_id=self.account_id, region=self.region)
        trail = await self.store.get_trail(name)
        if trail is None:
            shown = (
                name_or_arn
                if name_or_arn.startswith("arn:")
                else trail_arn(self.region, self.account_id, name)
            )
            raise err("TrailNotFoundException", f"Unknown trail: {shown} for the user: {self.account_id}")
        return trail

    async def _check_bucket(self, bucket: str, prefix: str, arn: str) -> None:
        """AWS's CreateTrail check: cloudtrail.amazonaws.com may GetBucketAcl and PutObject."""
        try:
            policy_text = await self.objects.get_bucket_policy(bucket)
        except Unavailable:
            raise ServiceUnavailable("The object store is unavailable. Please retry.") from None
        except AwsError as exc:
            if exc.code == "NoSuchBucket":
                raise err("S3BucketDoesNotExistException", f"S3 bucket {bucket} does not exist.") from None
            raise err(
                "InsufficientS3BucketPolicyException",
                f"Incorrect S3 bucket policy is detected for bucket: {bucket}",
            ) from None
        insufficient = err(
            "InsufficientS3BucketPolicyException",
            f"Incorrect S3 bucket policy is detected for bucket: {bucket}",
        )
        if not policy_text:
            raise insufficient
        try:
            policy = parse_policy(policy_text)
        except MalformedPolicyError:
            raise insufficient from None
        principal = Principal.aws_service(CLOUDTRAIL)
        context = {
            "aws:SourceArn": arn,
            "aws:SourceAccount": self.account_id,
            "s3:x-amz-acl": "bucket-owner-full-control",
        }
        sample = (
            log_prefix(prefix=prefix, account_id=self.account_id, region=self.region)
            + f"{self.clock():%Y/%m/%d}/{self.account_id}_CloudTrail_{self.region}_check.json.gz"
        )
        checks = (
            ("s3:GetBucketAcl", f"arn:aws:s3:::{bucket}"),
            ("s3:PutObject", f"arn:aws:s3:::{bucket}/{sample}"),
        )
        for action, resource in checks:
            decision = evaluate(
                AuthzRequest(principal=principal, action=action, resource=resource, context=context),
                resource_policy=policy,
                resource_account=self.account_id,
                mode="standard",
            )
            if not decision.allowed:
                raise insufficient
        # As AWS does, CloudTrail then reads the bucket ACL as itself (this shows up in the trail).
        try:
            await self.objects.check_bucket_acl_access(bucket, source_arn=arn, source_account=self.account_id)
        except AwsError as exc:
            if exc.code == "AccessDenied":
                raise insufficient from None
            if exc.code == "NoSuchBucket":
                raise err("S3BucketDoesNotExistException", f"S3 bucket {bucket} does not exist.") from None
            log.warning("bucket_acl_check_failed", bucket=bucket, code=exc.code)
        except Unavailable:
            raise ServiceUnavailable("The object store is unavailable. Please retry.") from None

    async def _check_kms_key(self, key_id: str, bucket: str, arn: str) -> str:
        """Resolve KmsKeyId to a key ARN CloudTrail may use; AWS's errors otherwise."""
        validate_kms_key_id(key_id)
        try:
            info = await self.keys.describe_key(key_id)
        except Unavailable:
            raise ServiceUnavailable("The key service is unavailable. Please retry.") from None
        except AwsError as exc:
            if exc.code in ("NotFoundException", "InvalidArnException"):
                raise err(
                    "KmsKeyNotFoundException", f"KMS key {key_id} does not exist or is not in this region."
                ) from None
            raise err("KmsException", f"Cannot use KMS key {key_id}: {exc.code}.") from None
        if info.key_usage != "ENCRYPT_DECRYPT" or info.key_spec not in ("", "SYMMETRIC_DEFAULT"):
            raise err("InvalidKmsKeyIdException", f"KMS key {info.arn} is not a symmetric encryption key.")
        if info.key_state != "Enabled":
            raise err("KmsException", f"KMS key {info.arn} is {info.key_state}.")
        insufficient = err(
            "InsufficientEncryptionPolicyException",
            f"Insufficient permissions to access S3 bucket {bucket} or KMS key {info.arn}.",
        )
        try:
            policy_text = await self.keys.get_key_policy(info.arn)
            policy = parse_policy(policy_text)
        except Unavailable:
            raise ServiceUnavailable("The key service is unavailable. Please retry.") from None
        except (AwsError, MalformedPolicyError):
            raise insufficient from None
        principal = Principal.aws_service(CLOUDTRAIL)
        context = {
            "aws:SourceArn": arn,
            "aws:SourceAccount": self.account_id,
            "kms:EncryptionContext:aws:cloudtrail:arn": arn,
        }
        key_account = info.arn.split(":")[4] if info.arn.count(":") >= 5 else self.account_id
        decision = evaluate(
            AuthzRequest(
                principal=principal, action="kms:GenerateDataKey", resource=info.arn, context=context
            ),
            resource_policy=policy,
            resource_account=key_account,
            mode="kms",
        )
        if not decision.allowed:
            raise insufficient
        return info.arn

    def _reject_unsupported(
        self, *, sns_topic_name: str, cw_group: str, cw_role: str, is_org: bool | None
    ) -> None:
        if sns_topic_name:
            raise err(
                "InsufficientSnsTopicPolicyException",
                "SNS Topic does not exist or the topic policy is incorrect!",
            )
        if cw_group or cw_role:
            if not cw_group or not cw_role:
                raise err(
                    "InvalidParameterCombinationException",
                    "You must specify both CloudWatchLogsLogGroupArn and CloudWatchLogsRoleArn.",
                )
            raise err(
                "CloudWatchLogsDeliveryUnavailableException",
                "CloudWatch Logs delivery is not available in this region.",
            )
        if is_org:
            raise err("OrganizationsNotInUseException", "This account is not a member of an organization.")

    async def create_trail(
        self,
        *,
        name: str,
        s3_bucket_name: str,
        s3_key_prefix: str = "",
        sns_topic_name: str = "",
        include_global_service_events: bool | None = None,
        is_multi_region_trail: bool | None = None,
        enable_log_file_validation: bool | None = None,
        cloud_watch_logs_log_group_arn: str = "",
        cloud_watch_logs_role_arn: str = "",
        kms_key_id: str = "",
        is_organization_trail: bool | None = None,
        tags: Sequence[tuple[str, str]] = (),
    ) -> Trail:
        validate_trail_name(name)
        if await self.store.get_trail(name) is not None:
            raise err(
                "TrailAlreadyExistsException", f"Trail {name} already exists for customer: {self.account_id}"
            )
        if await self.store.count_trails() >= MAX_TRAILS_PER_REGION:
            raise err(
                "MaximumNumberOfTrailsExceededException",
                f"User: {self.account_id} already has {MAX_TRAILS_PER_REGION} trails in {self.region}.",
            )
        validate_bucket_name(s3_bucket_name)
        validate_key_prefix(s3_key_prefix)
        validate_tags(list(tags))
        if include_global_service_events is False and is_multi_region_trail:
            raise err(
                "InvalidParameterCombinationException",
                "Multi-Region trail must include global service events.",
            )
        self._reject_unsupported(
            sns_topic_name=sns_topic_name,
            cw_group=cloud_watch_logs_log_group_arn,
            cw_role=cloud_watch_logs_role_arn,
            is_org=is_organization_trail,
        )
        arn = trail_arn(self.region, self.account_id, name)
        await self._check_bucket(s3_bucket_name, s3_key_prefix, arn)
        key_arn = await self._check_kms_key(kms_key_id, s3_bucket_name, arn) if kms_key_id else ""
        trail = Trail(
            name=name,
            account_id=self.account_id,
            region=self.region,
            s3_bucket_name=s3_bucket_name,
            s3_key_prefix=s3_key_prefix,
            include_global_service_events=True
            if include_global_service_events is None
            else include_global_service_events,
            is_multi_region_trail=bool(is_multi_region_trail),
            log_file_validation_enabled=bool(enable_log_file_validation),
            kms_key_id=key_arn,
            event_selectors=sel.DEFAULT_EVENT_SELECTORS,
            created_at=self.clock(),
        )
        try:
            await self.store.insert_trail(trail, tags, cursor=await self.store.max_seq())
        except Exception as exc:  # a concurrent CreateTrail of the same name
            if "UNIQUE" in str(exc):
                raise err(
                    "TrailAlreadyExistsException",
                    f"Trail {name} already exists for customer: {self.account_id}",
                ) from None
            raise
        self._on_trails_changed()
        return trail

    async def update_trail(
        self,
        *,
        name: str,
        s3_bucket_name: str | None = None,
        s3_key_prefix: str | None = None,
        sns_topic_name: str | None = None,
        include_global_service_events: bool | None = None,
        is_multi_region_trail: bool | None = None,
        enable_log_file_validation: bool | None = None,
        cloud_watch_logs_log_group_arn: str | None = None,
        cloud_watch_logs_role_arn: str | None = None,
        kms_key_id: str | None = None,
        is_organization_trail: bool | None = None,
    ) -> Trail:
        trail = await self._trail(name)
        self._reject_unsupported(
            sns_topic_name=sns_topic_name or "",
            cw_group=cloud_watch_logs_log_group_arn or "",
            cw_role=cloud_watch_logs_role_arn or "",
            is_org=is_organization_trail,
        )
        changes: dict[str, Any] = {}
        bucket = trail.s3_bucket_name if s3_bucket_name is None else s3_bucket_name
        prefix = trail.s3_key_prefix if s3_key_prefix is None else s3_key_prefix
        if s3_bucket_name is not None:
            validate_bucket_name(s3_bucket_name)
            changes["s3_bucket_name"] = s3_bucket_name
        if s3_key_prefix is not None:
            validate_key_prefix(s3_key_prefix)
            changes["s3_key_prefix"] = s3_key_prefix
        if s3_bucket_name is not None or s3_key_prefix is not None:
            await self._check_bucket(bucket, prefix, trail.arn)
        if include_global_service_events is not None:
            changes["include_global_service_events"] = include_global_service_events
        if is_multi_region_trail is not None:
            changes["is_multi_region_trail"] = is_multi_region_trail
        multi = changes.get("is_multi_region_trail", trail.is_multi_region_trail)
        include_global = changes.get("include_global_service_events", trail.include_global_service_events)
        if multi and not include_global:
            raise err(
                "InvalidParameterCombinationException",
                "Multi-Region trail must include global service events.",
            )
        if kms_key_id is not None:
            changes["kms_key_id"] = (
                await self._check_kms_key(kms_key_id, bucket, trail.arn) if kms_key_id else ""
            )
        validation_turned_on = False
        if enable_log_file_validation is not None:
            validation_turned_on = enable_log_file_validation and not trail.log_file_validation_enabled
            changes["log_file_validation_enabled"] = enable_log_file_validation
        updated = await self.store.modify_trail(trail.name, lambda t: replace(t, **changes))
        if updated is None:
            raise err("TrailNotFoundException", f"Unknown trail: {trail.arn} for the user: {self.account_id}")
        if validation_turned_on:
            await self.store.reset_digest_chain(updated.name, iso(self.clock()), skip_undigested=True)
        self._on_trails_changed()
        return updated

    async def delete_trail(self, name: str) -> None:
        trail = await self._trail(name)
        await self.store.delete_trail(trail)
        self._on_trails_changed()

    async def get_trail(self, name: str) -> Trail:
        return await self._trail(name)

    async def describe_trails(self, names: Sequence[str], include_shadow_trails: bool | None) -> list[Trail]:
        trails = await self.store.list_trails()
        if not names:
            return trails
        wanted: list[Trail] = []
        by_name = {t.name: t for t in trails}
        for value in names:
            try:
                name = parse_name_or_arn(value, account_id=self.account_id, region=self.region)
            except AwsError as exc:
                if exc.code in ("TrailNotFoundException", "InvalidHomeRegionException"):
                    continue
                raise
            if name in by_name and by_name[name] not in wanted:
                wanted.append(by_name[name])
        return wanted

    async def list_trails(self) -> list[Trail]:
        return await self.store.list_trails()

    async def start_logging(self, name: str) -> None:
        trail = await self._trail(name)
        if trail.status.is_logging:
            return
        now = self.clock()
        # Re-scan the last few seconds of arrivals: a record of a call made after StartLogging
        # may have been received just before it (senders batch every 50 ms).
        cursor = await self.store.max_seq_received_before(int(now.timestamp() * 1000) - 10_000)
        cursor = max(cursor, 0)
        await self.store.modify_trail(
            trail.name,
            lambda t: t.with_status(is_logging=True, start_logging_time=now, stop_logging_time=None),
            cursor=cursor,
        )
        await self.store.reset_digest_chain(trail.name, None)
        self._on_trails_changed()

    async def stop_logging(self, name: str) -> None:
        trail = await self._trail(name)
        if not trail.status.is_logging:
            return
        now = self.clock()
        await self.store.modify_trail(
            trail.name, lambda t: t.with_status(is_logging=False, stop_logging_time=now)
        )
        self._on_trails_changed()

    async def get_trail_status(self, name: str) -> Trail:
        return await self._trail(name)

    # ------------------------------------------------------------------ selectors

    async def put_event_selectors(
        self,
        name: str,
        event_selectors: list[dict[str, Any]] | None,
        advanced_event_selectors: list[dict[str, Any]] | None,
    ) -> Trail:
        trail = await self._trail(name)
        if event_selectors and advanced_event_selectors:
            raise err(
                "InvalidEventSelectorsException",
                "You can use either AdvancedEventSelectors or EventSelectors, but not both.",
            )
        if not event_selectors and not advanced_event_selectors:
            raise err(
                "InvalidEventSelectorsException",
                "You must specify either EventSelectors or AdvancedEventSelectors.",
            )
        if advanced_event_selectors:
            advanced = sel.normalise_advanced_selectors(advanced_event_selectors)
            updated = await self.store.modify_trail(
                trail.name,
                lambda t: replace(
                    t, advanced_event_selectors=advanced, event_selectors=(), has_custom_event_selectors=True
                ),
            )
        else:
            basic = sel.normalise_event_selectors(event_selectors or [])
            updated = await self.store.modify_trail(
                trail.name,
                lambda t: replace(
                    t, event_selectors=basic, advanced_event_selectors=(), has_custom_event_selectors=True
                ),
            )
        if updated is None:
            raise err("TrailNotFoundException", f"Unknown trail: {trail.arn} for the user: {self.account_id}")
        self._on_trails_changed()
        return updated

    async def get_event_selectors(self, name: str) -> Trail:
        return await self._trail(name)

    async def put_insight_selectors(
        self, name: str, selectors: list[dict[str, Any]], event_data_store: str, insights_destination: str
    ) -> Trail:
        if event_data_store or insights_destination:
            raise err("UnsupportedOperationException", "CloudTrail Lake event data stores are not supported.")
        if not name:
            raise err(
                "InvalidParameterCombinationException", "You must specify a TrailName or an EventDataStore."
            )
        trail = await self._trail(name)
        normalised = sel.normalise_insight_selectors(selectors)
        updated = await self.store.modify_trail(
            trail.name, lambda t: replace(t, insight_selectors=normalised)
        )
        if updated is None:
            raise err("TrailNotFoundException", f"Unknown trail: {trail.arn} for the user: {self.account_id}")
        self._on_trails_changed()
        return updated

    async def get_insight_selectors(self, name: str, event_data_store: str) -> Trail:
        if event_data_store:
            raise err("UnsupportedOperationException", "CloudTrail Lake event data stores are not supported.")
        if not name:
            raise err(
                "InvalidParameterCombinationException", "You must specify a TrailName or an EventDataStore."
            )
        trail = await self._trail(name)
        if not trail.insight_selectors:
            raise err(
                "InsightNotEnabledException",
                f"Trail {trail.arn} does not have Insights enabled. Use PutInsightSelectors to enable "
                "Insights on this trail.",
            )
        return trail

    # ------------------------------------------------------------------ tags

    async def _tagged_trail(self, resource_id: str) -> Trail:
        if not resource_id.startswith("arn:"):
            raise err(
                "CloudTrailARNInvalidException",
                f"Invalid trail ARN: {resource_id}. The ARN must be in the format "
                "arn:aws:cloudtrail:<region>:<account-id>:trail/<trail-name>.",
            )
        if ":trail/" not in resource_id:
            raise err(
                "ResourceTypeNotSupportedException", f"Resource type of {resource_id} is not supported."
            )
        name = parse_name_or_arn(resource_id, account_id=self.account_id, region=self.region)
        trail = await self.store.get_trail(name)
        if trail is None:
            raise err("ResourceNotFoundException", f"Resource {resource_id} not found.")
        return trail

    async def add_tags(self, resource_id: str, tags: Sequence[tuple[str, str]]) -> None:
        trail = await self._tagged_trail(resource_id)
        existing = dict(await self.store.tags(trail.arn))
        new_keys = [k for k, _ in tags if k not in existing]
        validate_tags(list(tags), existing=len(existing) + len(new_keys) - len(tags))
        await self.store.put_tags(trail.arn, tags)

    async def remove_tags(self, resource_id: str, tags: Sequence[tuple[str, str | None]]) -> None:
        trail = await self._tagged_trail(resource_id)
        await self.store.remove_tags(trail.arn, tags)

    async def list_tags(self, resource_ids: Sequence[str]) -> list[tuple[str, list[tuple[str, str]]]]:
        if not resource_ids:
            raise err("InvalidParameterException", "ResourceIdList must contain at least one ARN.")
        if len(resource_ids) > 20:
            raise err("InvalidParameterException", "ResourceIdList can contain at most 20 ARNs.")
        out = []
        for rid in resource_ids:
            trail = await self._tagged_trail(rid)
            out.append((trail.arn, await self.store.tags(trail.arn)))
        return out

    # ------------------------------------------------------------------ public keys

    async def list_public_keys(self, start: datetime | None, end: datetime | None) -> list[PublicKeyInfo]:
        if start is not None and end is not None and start > end:
            raise err("InvalidTimeRangeException", "Start time must be before end time.")
        if self.signer is not None:
            try:
                await self.signer.public_key()  # creates the signing key on first use
            except (Unavailable, AwsError) as exc:
                log.warning("digest_signing_key_unavailable", error=type(exc).__name__)
        now_ms = int(self.clock().timestamp() * 1000)
        lo = int(start.timestamp() * 1000) if start else now_ms
        hi = int(end.timestamp() * 1000) if end else now_ms
        out = []
        for key in await self.store.signing_keys():
            valid_to = key.valid_to_ms
            if key.valid_from_ms > hi + 3600_000 or (valid_to is not None and valid_to < lo):
                continue
            out.append(
                PublicKeyInfo(
                    value=key.public_der,
                    fingerprint=key.fingerprint,
                    valid_from=datetime.fromtimestamp(key.valid_from_ms / 1000, timezone.utc),
                    valid_to=datetime.fromtimestamp(valid_to / 1000, timezone.utc) if valid_to else None,
                )
            )
        return out
