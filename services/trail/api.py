"""gRPC servicer for strongroom.trail.v1.CloudTrail: protobuf <-> use cases, nothing else.

Every AWS operation is recorded as a CloudTrail event of source ``cloudtrail.amazonaws.com``
(as AWS does; e.g. LookupEvents calls appear in event history). ``PutEvents`` is internal and
is not recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from strongroom.trail.v1 import trail_pb2 as pb
from strongroom.trail.v1 import trail_pb2_grpc

from common.audit import Event, build_event, encode_record, materialize, redact_parameters
from common.audit_index import InvalidRecord, columns_of, count_records, index_of, unpack_records
from common.caller import caller_from_metadata
from common.errors import AwsError
from common.logging import get_logger
from services.trail.domain.event import EventBatch
from services.trail.domain.trails import Trail
from services.trail.service import TrailService

log = get_logger(__name__)

EVENT_SOURCE = "cloudtrail.amazonaws.com"
T = TypeVar("T")


def _dt(ts: Timestamp) -> datetime:
    when: datetime = ts.ToDatetime(tzinfo=timezone.utc)
    return when


def _ts(when: datetime | None) -> Timestamp | None:
    if when is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(when.astimezone(timezone.utc))
    return ts


def _iso(when: datetime | None) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if when else ""


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def request_parameters(request: Message) -> dict[str, Any] | None:
    """CloudTrail's requestParameters: AWS member names in camelCase, secrets removed."""
    params = redact_parameters(json_format.MessageToDict(request))
    return _camel(params) if params else None


def _opt_str(msg: Message, field: str) -> str | None:
    return getattr(msg, field) if msg.HasField(field) else None


def _opt_bool(msg: Message, field: str) -> bool | None:
    return bool(getattr(msg, field)) if msg.HasField(field) else None


def trail_fields(trail: Trail) -> dict[str, Any]:
    """The members CreateTrail / UpdateTrail return."""
    return {
        "name": trail.name,
        "s3_bucket_name": trail.s3_bucket_name,
        "s3_key_prefix": trail.s3_key_prefix,
        "sns_topic_name": trail.sns_topic_name,
        "sns_topic_arn": trail.sns_topic_arn,
        "include_global_service_events": trail.include_global_service_events,
        "is_multi_region_trail": trail.is_multi_region_trail,
        "trail_arn": trail.arn,
        "log_file_validation_enabled": trail.log_file_validation_enabled,
        "cloud_watch_logs_log_group_arn": trail.cloud_watch_logs_log_group_arn,
        "cloud_watch_logs_role_arn": trail.cloud_watch_logs_role_arn,
        "kms_key_id": trail.kms_key_id,
        "is_organization_trail": trail.is_organization_trail,
    }


def trail_message(trail: Trail) -> pb.Trail:
    fields = trail_fields(trail)
    fields.update(
        home_region=trail.region,
        has_custom_event_selectors=trail.has_custom_event_selectors,
        has_insight_selectors=trail.has_insight_selectors,
    )
    return pb.Trail(**fields)


def _event_selectors(selectors: tuple[dict[str, Any], ...]) -> list[pb.EventSelector]:
    out = []
    for s in selectors:
        out.append(
            pb.EventSelector(
                read_write_type=s.get("ReadWriteType", "All"),
                include_management_events=bool(s.get("IncludeManagementEvents", True)),
                data_resources=[
                    pb.DataResource(type=d["Type"], values=d.get("Values", []))
                    for d in s.get("DataResources") or []
                ],
                exclude_management_event_sources=s.get("ExcludeManagementEventSources") or [],
            )
        )
    return out


_FIELD_OPS = (
    ("Equals", "equals"),
    ("StartsWith", "starts_with"),
    ("EndsWith", "ends_with"),
    ("NotEquals", "not_equals"),
    ("NotStartsWith", "not_starts_with"),
    ("NotEndsWith", "not_ends_with"),
)


def _advanced_selectors(selectors: tuple[dict[str, Any], ...]) -> list[pb.AdvancedEventSelector]:
    out = []
    for s in selectors:
        fields = []
        for fs in s["FieldSelectors"]:
            kwargs = {attr: fs[op] for op, attr in _FIELD_OPS if fs.get(op)}
            fields.append(pb.AdvancedFieldSelector(field=fs["Field"], **kwargs))
        out.append(pb.AdvancedEventSelector(name=s.get("Name", ""), field_selectors=fields))
    return out


def _insight_selectors(selectors: tuple[dict[str, Any], ...]) -> list[pb.InsightSelector]:
    return [
        pb.InsightSelector(insight_type=s["InsightType"], event_categories=s.get("EventCategories") or [])
        for s in selectors
    ]


class LocalAuditSink:
    """The trail's own records go straight into its store (batched every 50 ms)."""

    def __init__(self, service: TrailService, interval: float = 0.05) -> None:
        self._service = service
        self._interval = interval
        self._pending: deque[Event] = deque()
        self._task: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()

    def record(self, event: Event) -> None:
        self._pending.append(event)
        if len(self._pending) == 1:
            self._arrived.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="trail-local-audit")

    async def _run(self) -> None:
        while True:
            await self._arrived.wait()  # idle until a record arrives, then batch for interval
            await asyncio.sleep(self._interval)
            self._arrived.clear()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                log.error("local_audit_flush_failed", error=str(exc))

    async def flush(self) -> None:
        batch = []
        while self._pending:
            event = materialize(self._pending.popleft())
            try:
                batch.append((index_of(event), encode_record(event).decode()))
            except InvalidRecord as exc:
                log.error("audit_record_unstorable", reason=str(exc))
        if batch:
            await self._service.put_events((), batch)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()


class CloudTrailServicer(trail_pb2_grpc.CloudTrailServicer):
    def __init__(self, service: TrailService, audit: LocalAuditSink) -> None:
        self.service = service
        self.audit = audit
        self.account_id = service.account_id
        self.region = service.region

    # ------------------------------------------------------------------ auditing

    async def _call(
        self,
        op: str,
        request: Message,
        context: grpc.aio.ServicerContext,
        fn: Callable[[], Awaitable[T]],
        *,
        read_only: bool,
        resource_arn: Callable[[], str | None] | None = None,
        response_elements: Callable[[T], dict[str, Any] | None] | None = None,
    ) -> T:
        caller = caller_from_metadata(context.invocation_metadata(), self.account_id, self.region)
        params = request_parameters(request)
        try:
            result = await fn()
        except AwsError as exc:
            self._record(caller, op, params, None, read_only, resource_arn, exc.code, exc.message)
            raise
        self._record(
            caller,
            op,
            params,
            response_elements(result) if response_elements else None,
            read_only,
            resource_arn,
            None,
            None,
        )
        return result

    def _record(
        self,
        caller: Any,
        op: str,
        params: dict[str, Any] | None,
        response: dict[str, Any] | None,
        read_only: bool,
        resource_arn: Callable[[], str | None] | None,
        error_code: str | None,
        error_message: str | None,
    ) -> None:
        try:
            resources = []
            arn = resource_arn() if resource_arn else None
            if arn:
                resources.append({"accountId": self.account_id, "type": "AWS::CloudTrail::Trail", "ARN": arn})
            self.audit.record(
                build_event(
                    caller=caller,
                    event_source=EVENT_SOURCE,
                    event_name=op,
                    region=self.region,
                    recipient_account_id=self.account_id,
                    request_parameters=params,
                    response_elements=response,
                    resources=resources,
                    read_only=read_only,
                    error_code=error_code,
                    error_message=error_message,
                )
            )
        except Exception as exc:  # noqa: BLE001 - auditing never fails a call
            log.error("audit_record_failed", operation=op, error=str(exc))

    def _arn_of(self, name: str) -> Callable[[], str | None]:
        def arn() -> str | None:
            if not name:
                return None
            if name.startswith("arn:"):
                return name
            return f"arn:aws:cloudtrail:{self.region}:{self.account_id}:trail/{name}"

        return arn

    # ------------------------------------------------------------------ internal

    async def PutEvents(
        self, request: pb.PutEventsRequest, context: grpc.aio.ServicerContext
    ) -> pb.PutEventsResponse:
        records = [(r.event_id, r.record_json) for r in request.records]
        batches: list[EventBatch] = []
        rejected_batches: list[str] = []
        for batch in request.batches:
            encoding, data = batch.records_encoding, batch.records_jsonl
            try:
                columns = columns_of(batch)
                if columns is not None and count_records(encoding, data) == len(columns.event_ids):
                    batches.append(EventBatch(encoding, data, columns))  # stored as it came
                else:  # no (usable) index: the trail indexes the records itself
                    records.extend(("", body) for body in unpack_records(encoding, data))
            except InvalidRecord as exc:
                log.error("audit_batch_rejected", sender=request.sender, reason=str(exc))
                rejected_batches.extend(batch.event_ids)
        accepted, duplicates = await self.service.put_batches(batches) if batches else (0, 0)
        more, more_duplicates, rejected = await self.service.put_events(records) if records else (0, 0, [])
        return pb.PutEventsResponse(
            accepted=accepted + more, duplicates=duplicates + more_duplicates,
            rejected_event_ids=rejected_batches + rejected,
        )

    # ------------------------------------------------------------------ event history

    async def LookupEvents(
        self, request: pb.LookupEventsRequest, context: grpc.aio.ServicerContext
    ) -> pb.LookupEventsResponse:
        async def run() -> pb.LookupEventsResponse:
            result = await self.service.lookup_events(
                attributes=[(a.attribute_key, a.attribute_value) for a in request.lookup_attributes],
                start=_dt(request.start_time) if request.HasField("start_time") else None,
                end=_dt(request.end_time) if request.HasField("end_time") else None,
                event_category=request.event_category,
                max_results=request.max_results if request.HasField("max_results") else None,
                next_token=request.next_token,
            )
            events = []
            for row, resources in result.events:
                events.append(
                    pb.Event(
                        event_id=row.event_id,
                        event_name=row.event_name,
                        read_only="" if row.read_only is None else ("true" if row.read_only else "false"),
                        access_key_id=row.access_key_id or "",
                        event_time=_ts(datetime.fromtimestamp(row.event_time_ms / 1000, timezone.utc)),
                        event_source=row.event_source,
                        username=row.username or "",
                        resources=[pb.Resource(resource_type=t, resource_name=n) for t, n in resources],
                        cloud_trail_event=row.body,
                    )
                )
            return pb.LookupEventsResponse(events=events, next_token=result.next_token or "")

        return await self._call("LookupEvents", request, context, run, read_only=True)

    # ------------------------------------------------------------------ trails

    async def CreateTrail(
        self, request: pb.CreateTrailRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateTrailResponse:
        async def run() -> pb.CreateTrailResponse:
            trail = await self.service.create_trail(
                name=request.name,
                s3_bucket_name=request.s3_bucket_name,
                s3_key_prefix=request.s3_key_prefix,
                sns_topic_name=request.sns_topic_name,
                include_global_service_events=_opt_bool(request, "include_global_service_events"),
                is_multi_region_trail=_opt_bool(request, "is_multi_region_trail"),
                enable_log_file_validation=_opt_bool(request, "enable_log_file_validation"),
                cloud_watch_logs_log_group_arn=request.cloud_watch_logs_log_group_arn,
                cloud_watch_logs_role_arn=request.cloud_watch_logs_role_arn,
                kms_key_id=request.kms_key_id,
                is_organization_trail=_opt_bool(request, "is_organization_trail"),
                tags=[(t.key, t.value) for t in request.tags_list],
            )
            return pb.CreateTrailResponse(**trail_fields(trail))

        return await self._call(
            "CreateTrail",
            request,
            context,
            run,
            read_only=False,
            resource_arn=self._arn_of(request.name),
            response_elements=lambda r: _camel(json_format.MessageToDict(r)),
        )

    async def UpdateTrail(
        self, request: pb.UpdateTrailRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateTrailResponse:
        async def run() -> pb.UpdateTrailResponse:
            trail = await self.service.update_trail(
                name=request.name,
                s3_bucket_name=_opt_str(request, "s3_bucket_name"),
                s3_key_prefix=_opt_str(request, "s3_key_prefix"),
                sns_topic_name=_opt_str(request, "sns_topic_name"),
                include_global_service_events=_opt_bool(request, "include_global_service_events"),
                is_multi_region_trail=_opt_bool(request, "is_multi_region_trail"),
                enable_log_file_validation=_opt_bool(request, "enable_log_file_validation"),
                cloud_watch_logs_log_group_arn=_opt_str(request, "cloud_watch_logs_log_group_arn"),
                cloud_watch_logs_role_arn=_opt_str(request, "cloud_watch_logs_role_arn"),
                kms_key_id=_opt_str(request, "kms_key_id"),
                is_organization_trail=_opt_bool(request, "is_organization_trail"),
            )
            return pb.UpdateTrailResponse(**trail_fields(trail))

        return await self._call(
            "UpdateTrail",
            request,
            context,
            run,
            read_only=False,
            resource_arn=self._arn_of(request.name),
            response_elements=lambda r: _camel(json_format.MessageToDict(r)),
        )

    async def DeleteTrail(
        self, request: pb.DeleteTrailRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteTrailResponse:
        async def run() -> pb.DeleteTrailResponse:
            await self.service.delete_trail(request.name)
            return pb.DeleteTrailResponse()

        return await self._call(
            "DeleteTrail", request, context, run, read_only=False, resource_arn=self._arn_of(request.name)
        )

    async def GetTrail(
        self, request: pb.GetTrailRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTrailResponse:
        async def run() -> pb.GetTrailResponse:
            return pb.GetTrailResponse(trail=trail_message(await self.service.get_trail(request.name)))

        return await self._call(
            "GetTrail", request, context, run, read_only=True, resource_arn=self._arn_of(request.name)
        )

    async def DescribeTrails(
        self, request: pb.DescribeTrailsRequest, context: grpc.aio.ServicerContext
    ) -> pb.DescribeTrailsResponse:
        async def run() -> pb.DescribeTrailsResponse:
            trails = await self.service.describe_trails(
                list(request.trail_name_list), _opt_bool(request, "include_shadow_trails")
            )
            return pb.DescribeTrailsResponse(trail_list=[trail_message(t) for t in trails])

        return await self._call("DescribeTrails", request, context, run, read_only=True)

    async def ListTrails(
        self, request: pb.ListTrailsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTrailsResponse:
        async def run() -> pb.ListTrailsResponse:
            trails = await self.service.list_trails()
            return pb.ListTrailsResponse(
                trails=[pb.TrailInfo(trail_arn=t.arn, name=t.name, home_region=t.region) for t in trails]
            )

        return await self._call("ListTrails", request, context, run, read_only=True)

    async def StartLogging(
        self, request: pb.StartLoggingRequest, context: grpc.aio.ServicerContext
    ) -> pb.StartLoggingResponse:
        async def run() -> pb.StartLoggingResponse:
            await self.service.start_logging(request.name)
            return pb.StartLoggingResponse()

        return await self._call(
            "StartLogging", request, context, run, read_only=False, resource_arn=self._arn_of(request.name)
        )

    async def StopLogging(
        self, request: pb.StopLoggingRequest, context: grpc.aio.ServicerContext
    ) -> pb.StopLoggingResponse:
        async def run() -> pb.StopLoggingResponse:
            await self.service.stop_logging(request.name)
            return pb.StopLoggingResponse()

        return await self._call(
            "StopLogging", request, context, run, read_only=False, resource_arn=self._arn_of(request.name)
        )

    async def GetTrailStatus(
        self, request: pb.GetTrailStatusRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTrailStatusResponse:
        async def run() -> pb.GetTrailStatusResponse:
            s = (await self.service.get_trail_status(request.name)).status
            resp = pb.GetTrailStatusResponse(
                is_logging=s.is_logging,
                latest_delivery_error=s.latest_delivery_error or "",
                latest_digest_delivery_error=s.latest_digest_delivery_error or "",
                latest_delivery_attempt_time=_iso(s.latest_delivery_attempt_time),
                latest_delivery_attempt_succeeded=_iso(s.latest_delivery_attempt_succeeded),
                latest_notification_attempt_time="",
                latest_notification_attempt_succeeded="",
                time_logging_started=_iso(s.start_logging_time),
                time_logging_stopped=_iso(s.stop_logging_time),
            )
            for field, value in (
                ("latest_delivery_time", s.latest_delivery_time),
                ("start_logging_time", s.start_logging_time),
                ("stop_logging_time", s.stop_logging_time),
                ("latest_digest_delivery_time", s.latest_digest_delivery_time),
            ):
                ts = _ts(value)
                if ts is not None:
                    getattr(resp, field).CopyFrom(ts)
            return resp

        return await self._call(
            "GetTrailStatus", request, context, run, read_only=True, resource_arn=self._arn_of(request.name)
        )

    # ------------------------------------------------------------------ selectors

    async def PutEventSelectors(
        self, request: pb.PutEventSelectorsRequest, context: grpc.aio.ServicerContext
    ) -> pb.PutEventSelectorsResponse:
        async def run() -> pb.PutEventSelectorsResponse:
            basic = [json_format.MessageToDict(s) for s in request.event_selectors]
            for raw, msg in zip(basic, request.event_selectors, strict=True):
                if not msg.HasField("include_management_events"):
                    raw.pop("IncludeManagementEvents", None)
            advanced = [json_format.MessageToDict(s) for s in request.advanced_event_selectors]
            trail = await self.service.put_event_selectors(request.trail_name, basic, advanced)
            return pb.PutEventSelectorsResponse(
                trail_arn=trail.arn,
                event_selectors=_event_selectors(trail.event_selectors),
                advanced_event_selectors=_advanced_selectors(trail.advanced_event_selectors),
            )

        return await self._call(
            "PutEventSelectors",
            request,
            context,
            run,
            read_only=False,
            resource_arn=self._arn_of(request.trail_name),
            response_elements=lambda r: _camel(json_format.MessageToDict(r)),
        )

    async def GetEventSelectors(
        self, request: pb.GetEventSelectorsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetEventSelectorsResponse:
        async def run() -> pb.GetEventSelectorsResponse:
            trail = await self.service.get_event_selectors(request.trail_name)
            if trail.advanced_event_selectors:
                return pb.GetEventSelectorsResponse(
                    trail_arn=trail.arn,
                    advanced_event_selectors=_advanced_selectors(trail.advanced_event_selectors),
                )
            from services.trail.domain.selectors import DEFAULT_EVENT_SELECTORS

            return pb.GetEventSelectorsResponse(
                trail_arn=trail.arn,
                event_selectors=_event_selectors(trail.event_selectors or DEFAULT_EVENT_SELECTORS),
            )

        return await self._call(
            "GetEventSelectors",
            request,
            context,
            run,
            read_only=True,
            resource_arn=self._arn_of(request.trail_name),
        )

    async def PutInsightSelectors(
        self, request: pb.PutInsightSelectorsRequest, context: grpc.aio.ServicerContext
    ) -> pb.PutInsightSelectorsResponse:
        async def run() -> pb.PutInsightSelectorsResponse:
            selectors = [json_format.MessageToDict(s) for s in request.insight_selectors]
            trail = await self.service.put_insight_selectors(
                request.trail_name, selectors, request.event_data_store, request.insights_destination
            )
            return pb.PutInsightSelectorsResponse(
                trail_arn=trail.arn, insight_selectors=_insight_selectors(trail.insight_selectors)
            )

        return await self._call(
            "PutInsightSelectors",
            request,
            context,
            run,
            read_only=False,
            resource_arn=self._arn_of(request.trail_name),
            response_elements=lambda r: _camel(json_format.MessageToDict(r)),
        )

    async def GetInsightSelectors(
        self, request: pb.GetInsightSelectorsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetInsightSelectorsResponse:
        async def run() -> pb.GetInsightSelectorsResponse:
            trail = await self.service.get_insight_selectors(request.trail_name, request.event_data_store)
            return pb.GetInsightSelectorsResponse(
                trail_arn=trail.arn, insight_selectors=_insight_selectors(trail.insight_selectors)
            )

        return await self._call(
            "GetInsightSelectors",
            request,
            context,
            run,
            read_only=True,
            resource_arn=self._arn_of(request.trail_name),
        )

    # ------------------------------------------------------------------ tags

    async def AddTags(
        self, request: pb.AddTagsRequest, context: grpc.aio.ServicerContext
    ) -> pb.AddTagsResponse:
        async def run() -> pb.AddTagsResponse:
            await self.service.add_tags(request.resource_id, [(t.key, t.value) for t in request.tags_list])
            return pb.AddTagsResponse()

        return await self._call(
            "AddTags",
            request,
            context,
            run,
            read_only=False,
            resource_arn=lambda: request.resource_id or None,
        )

    async def RemoveTags(
        self, request: pb.RemoveTagsRequest, context: grpc.aio.ServicerContext
    ) -> pb.RemoveTagsResponse:
        async def run() -> pb.RemoveTagsResponse:
            await self.service.remove_tags(
                request.resource_id, [(t.key, t.value or None) for t in request.tags_list]
            )
            return pb.RemoveTagsResponse()

        return await self._call(
            "RemoveTags",
            request,
            context,
            run,
            read_only=False,
            resource_arn=lambda: request.resource_id or None,
        )

    async def ListTags(
        self, request: pb.ListTagsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTagsResponse:
        async def run() -> pb.ListTagsResponse:
            result = await self.service.list_tags(list(request.resource_id_list))
            return pb.ListTagsResponse(
                resource_tag_list=[
                    pb.ResourceTag(resource_id=arn, tags_list=[pb.Tag(key=k, value=v) for k, v in tags])
                    for arn, tags in result
                ]
            )

        return await self._call("ListTags", request, context, run, read_only=True)

    # ------------------------------------------------------------------ public keys

    async def ListPublicKeys(
        self, request: pb.ListPublicKeysRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListPublicKeysResponse:
        async def run() -> pb.ListPublicKeysResponse:
            keys = await self.service.list_public_keys(
                _dt(request.start_time) if request.HasField("start_time") else None,
                _dt(request.end_time) if request.HasField("end_time") else None,
            )
            out = []
            for k in keys:
                msg = pb.PublicKey(
                    value=k.value, fingerprint=k.fingerprint, validity_start_time=_ts(k.valid_from)
                )
                if k.valid_to is not None:
                    msg.validity_end_time.CopyFrom(_ts(k.valid_to))
                out.append(msg)
            return pb.ListPublicKeysResponse(public_key_list=out)

        return await self._call("ListPublicKeys", request, context, run, read_only=True)
