"""The gateway's aiohttp application: one port for KMS, S3, CloudTrail, IAM and STS.

Request path (every request except ``GET /_strongroom/health``):

1. a request id (uuid4; for S3, 16 base32 characters as S3 writes them), returned as
   ``x-amzn-RequestId`` (and ``x-amz-request-id`` for S3);
2. routing (gateway/aws/router.py) to a service and its protocol;
3. authentication with gateway.auth against the :class:`IdentityResolver` (root key, IAM
   user keys, STS session credentials), anonymous requests refused except for S3;
4. the :class:`strongroom.common.v1.Caller` of the request (gateway/caller.py);
5. per protocol:

   * JSON 1.1 (KMS, CloudTrail): body -> typed input (protocols/json.py) -> model validation
     (common/aws_validation.py) -> ``<Op>Request`` (shapes.py) -> the backend's RPC over the
     app's one channel, with the caller as metadata -> ``<Op>Response`` -> AWS JSON;
   * Query (IAM, STS): parameters -> typed input (protocols/query.py) -> validation ->
     authorisation with the caller's identity policies -> gateway/iam -> XML; one CloudTrail
     record per call into the audit sink;
   * S3: ``gateway.backends.s3.handle(request, ctx)`` with a :class:`RequestContext`
     (gateway/context.py); ``501 NotImplemented`` while that module does not exist.

Errors are always AWS errors in the protocol's format; anything unexpected is logged with its
traceback and answered ``InternalFailure`` (500) with a generic message.

Lifetimes (``cleanup_ctx``, in order; closed in reverse): gRPC channels (one per backend for
the app's lifetime), audit sink, IAM store. Typed state lives under :data:`GATEWAY`.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

import grpc
from aiohttp import web
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.audit import AuditSink, MemorySink, new_s3_request_id
from common.aws_validation import validate
from common.caller import CALLER_METADATA_KEY, caller_metadata
from common.config import Settings
from common.errors import AwsError
from common.grpc_errors import from_rpc_error
from common.grpc_server import CHANNEL_OPTIONS
from common.logging import get_logger
from gateway.audit import record_call
from gateway.auth import (
    AuthError,
    HttpRequestView,
    authenticate,
    parse_query,
    require_authenticated,
)
from gateway.aws import router, shapes
from gateway.aws.errors import (
    InvalidAction,
    MissingAction,
    SerializationException,
    UnknownOperationException,
    UnsupportedOperationException,
    for_query,
    internal_error,
    query_auth_error,
)
from gateway.aws.protocols import json as json_protocol
from gateway.aws.protocols import query as query_protocol
from gateway.aws.protocols import s3_error
from gateway.backends import cloudtrail as cloudtrail_backend
from gateway.backends import iam as iam_backend
from gateway.backends import kms as kms_backend
from gateway.backends import sts as sts_backend
from gateway.backends.binding import JsonBinding
from gateway.backends.local import LocalBinding
from gateway.caller import build_caller, caller_bytes, condition_context
from gateway.context import RPC_TIMEOUT, RequestContext
from gateway.iam import authz
from gateway.iam.identities import IdentityResolver
from gateway.iam.keyring import SecretBox
from gateway.iam.model import Identity
from gateway.iam.service import AccessDenied, Call, IamService, StsService
from gateway.iam.store import IamStore

log = get_logger(__name__)

HEALTH_PATH = "/_strongroom/health"
BACKENDS = ("kms", "s3", "trail")
JSON_BINDINGS: dict[str, JsonBinding] = {
    "kms": kms_backend.BINDING,
    "cloudtrail": cloudtrail_backend.BINDING,
}
LOCAL_BINDINGS: dict[str, LocalBinding] = {
    "iam": iam_backend.BINDING,
    "sts": sts_backend.BINDING,
}
GRPC_CHANNEL_OPTIONS = (*CHANNEL_OPTIONS, ("grpc.keepalive_time_ms", 30_000))
#: Codes any operation may answer besides its modelled errors (auth, throttling, generic).
COMMON_ERROR_CODES = frozenset({
    "AccessDeniedException", "ValidationException", "UnknownOperationException",
    "SerializationException", "UnsupportedOperationException", "InternalFailure",
    "ServiceUnavailable", "ThrottlingException", "IncompleteSignatureException",
    "InvalidSignatureException", "MissingAuthenticationTokenException",
    "UnrecognizedClientException", "ExpiredTokenException",
})
CLIENT_MAX_SIZE = 16 * 1024 * 1024
SESSION_PURGE_SECONDS = 3600.0


@dataclass(slots=True)
class Gateway:
    """Everything a request needs, built once per app (typed app state)."""

    settings: Settings
    channels: dict[str, grpc.aio.Channel]
    identities: IdentityResolver
    iam: IamService
    sts: StsService
    audit: AuditSink
    stubs: dict[str, Any] = field(default_factory=dict)      # JSON service -> stub
    s3_handle: Callable[[web.Request, RequestContext], Awaitable[web.StreamResponse]] | None = None
    s3_stub: Any = None

    def __post_init__(self) -> None:
        for name, binding in JSON_BINDINGS.items():
            self.stubs[name] = binding.stub(self.channels[binding.backend])
        self.s3_handle, self.s3_stub = _load_s3(self.channels["s3"])


def _load_s3(channel: grpc.aio.Channel) -> tuple[Any, Any]:
    try:
        module = importlib.import_module("gateway.backends.s3")
    except ModuleNotFoundError as exc:
        if exc.name not in ("gateway.backends.s3",):
            raise
        module = None
    stub = None
    try:
        from strongroom.s3.v1 import s3_pb2_grpc

        stub = s3_pb2_grpc.S3Stub(channel)
    except ImportError:
        pass
    return (getattr(module, "handle", None) if module else None), stub


GATEWAY = web.AppKey("gateway", Gateway)
SETTINGS = web.AppKey("settings", Settings)
CHANNELS = web.AppKey("channels", dict)
AUDIT = web.AppKey("audit", AuditSink)
IAM_PARTS = web.AppKey("iam_parts", tuple)


# ---------------------------------------------------------------------------------------------
# helpers


def _view(request: web.Request, query: list[tuple[str, str]], is_s3: bool) -> HttpRequestView:
    return HttpRequestView(method=request.method, raw_path=request.raw_path.partition("?")[0],
                           query=query, headers=request.headers, host=request.host, is_s3=is_s3)


def _caller(gw: Gateway, request: web.Request, identity: Identity | None, auth: Any,
            request_id: str) -> Any:
    return build_caller(identity=identity, account_id=gw.settings.account_id,
                        region=gw.settings.region, request_id=request_id,
                        source_ip=request.remote or "", host=request.host,
                        user_agent=request.headers.get("User-Agent", ""), auth=auth)


def _auth_error(err: AuthError) -> AwsError:
    from common.errors import make_error

    return make_error(err.code, err.message, err.http_status)


def _too_large() -> AwsError:
    from common.errors import make_error

    return make_error("RequestEntityTooLarge",
                      f"Request body exceeds the maximum of {CLIENT_MAX_SIZE} bytes.", 413)


def _has_details(exc: grpc.aio.AioRpcError) -> bool:
    return any(k == "grpc-status-details-bin" for k, _ in (exc.trailing_metadata() or ()))


def _unexpected(where: str, exc: BaseException, request_id: str) -> AwsError:
    log.error("unhandled_exception", where=where, request_id=request_id, exc_info=exc)
    return internal_error()


# ---------------------------------------------------------------------------------------------
# JSON 1.1 (KMS, CloudTrail)


async def handle_json(gw: Gateway, request: web.Request, route: router.Route,
                      request_id: str) -> web.Response:
    try:
        body = await request.read()
        binding = JSON_BINDINGS.get(route.service)
        query = parse_query(request.query_string) if request.query_string else []
        auth = await authenticate(
            _view(request, query, False), gw.identities.lookup,
            now=datetime.now(timezone.utc), region=gw.settings.region,
            service=binding.spec.signing_name if binding is not None else None,
            body_sha256=lambda: hashlib.sha256(body).hexdigest())
        require_authenticated(auth, is_s3=False)
        if binding is None or route.operation is None or not binding.has_operation(route.operation):
            raise UnknownOperationException("")
        op = binding.operation(route.operation)
        if op is None:
            raise UnsupportedOperationException(
                f"{route.operation} is not supported by this endpoint.")
        input_shape = op.model.input_shape
        params = json_protocol.parse_request(input_shape, body)
        validate(input_shape, params)
        try:
            message = shapes.to_message(input_shape, op.request, params)
        except (TypeError, ValueError) as exc:  # a value the message cannot hold
            raise SerializationException(f"Invalid value in the request: {type(exc).__name__}") from None
        metadata = ((CALLER_METADATA_KEY, caller_bytes(
            identity=auth.principal, region=gw.settings.region,  # type: ignore[arg-type]
            request_id=request_id, source_ip=request.remote or "",
            user_agent=request.headers.get("User-Agent", ""), host=request.host, auth=auth)),)
        rpc = getattr(gw.stubs[route.service], op.rpc)
        try:
            reply = await rpc(message, metadata=metadata, timeout=RPC_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED and not _has_details(exc):
                raise UnsupportedOperationException(
                    f"{op.name} is not supported by this endpoint.") from None
            err = from_rpc_error(exc)
            if err.code not in op.error_codes and err.code not in COMMON_ERROR_CODES:
                log.warning("unmodelled_error", service=route.service, operation=op.name,
                            code=err.code)
            raise err from None
        value = shapes.from_message(op.model.output_shape, reply, shapes.JSON)
        return json_protocol.response(value, request_id)
    except AwsError as err:
        return json_protocol.error_response(err, request_id)
    except AuthError as err:
        return json_protocol.error_response(_auth_error(err), request_id)
    except web.HTTPRequestEntityTooLarge:
        return json_protocol.error_response(_too_large(), request_id)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - never a bare 500
        return json_protocol.error_response(_unexpected("json", exc, request_id), request_id)


# ---------------------------------------------------------------------------------------------
# Query (IAM, STS)


async def handle_query(gw: Gateway, request: web.Request, route: router.Route,
                       request_id: str) -> web.StreamResponse:
    namespace = ""
    try:
        query = parse_query(request.query_string) if request.query_string else []
        body = await request.read() if request.body_exists else b""
        form: list[tuple[str, str]] = []
        if body and router.is_form(request.method, request.headers):
            try:
                form = parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                 strict_parsing=False)
            except UnicodeDecodeError:
                form = []
        params = [*query, *form]
        if route.needs_body or route.operation is None:
            if not route.service and router.param(params, "Action") is None:
                # A form POST that is not a Query call: S3 (e.g. a browser upload form).
                return await handle_s3(gw, request, router.Route("s3", router.REST_XML),
                                       request_id)
            route = router.route_query(params, route.service)
        binding = LOCAL_BINDINGS.get(route.service) or LOCAL_BINDINGS["iam"]
        namespace = binding.spec.xml_namespace
        auth = await authenticate(
            _view(request, query, False), gw.identities.lookup,
            now=datetime.now(timezone.utc), region=gw.settings.region,
            service=None, body_sha256=lambda: hashlib.sha256(body).hexdigest())
        require_authenticated(auth, is_s3=False)
        if auth.service is not None and auth.service != binding.service:
            raise _scope_mismatch(auth.service, binding.service)
        identity: Identity = auth.principal  # type: ignore[assignment]
        caller = _caller(gw, request, identity, auth, request_id)
        return await _run_local(gw, binding, route, params, identity, caller, request_id)
    except AwsError as err:
        return query_protocol.error_response(err, namespace, request_id)
    except AuthError as err:
        return query_protocol.error_response(
            query_auth_error(err.code, err.message, err.http_status), namespace, request_id)
    except web.HTTPRequestEntityTooLarge:
        return query_protocol.error_response(_too_large(), namespace, request_id)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001
        return query_protocol.error_response(_unexpected("query", exc, request_id), namespace,
                                             request_id)


def _scope_mismatch(scope: str, service: str) -> AwsError:
    from common.errors import make_error

    return make_error("SignatureDoesNotMatch",
                      f"Credential should be scoped to correct service: '{service}'. ", 403)


async def _run_local(gw: Gateway, binding: LocalBinding, route: router.Route,
                     params: list[tuple[str, str]], identity: Identity, caller: Any,
                     request_id: str) -> web.Response:
    name = route.operation
    version = router.param(params, "Version") or ""
    if not name:
        raise MissingAction("Could not find operation for the request: Action is missing.")
    op_model = binding.spec.operation(name)
    if op_model is None:
        raise InvalidAction(f"Could not find operation {name} for version {version}")
    op = binding.operations.get(name)
    if op is None:
        raise InvalidAction(f"The action {name} is not implemented by this endpoint.")
    values: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: AwsError | None = None
    service_obj = gw.iam if binding.service == "iam" else gw.sts
    try:
        values = query_protocol.parse_request(op_model.input_shape, params)
        validate(op_model.input_shape, values)
        call = Call(identity=identity, context=condition_context(caller))
        if op.action is not None and op.resource is not None:
            resource = await op.resource(service_obj, call, values)
            decision = authz.decide(identity, op.action, resource, call.context)
            if not decision.allowed:
                raise AccessDenied(authz.denial_message(identity, op.action, resource, decision))
        try:
            result = await op.handler(service_obj, call, values)
        finally:
            if not op.read_only:
                gw.identities.invalidate()
        return query_protocol.response(name, op_model.output_shape, result,
                                       binding.spec.xml_namespace, request_id)
    except AwsError as err:
        error = err
        raise
    except Exception:
        error = internal_error()
        raise
    finally:
        code = for_query(error)[0] if error is not None else None
        record_call(gw.audit, caller=caller, event_source=binding.event_source, operation=name,
                    region=gw.settings.region, account_id=gw.settings.account_id,
                    params=values, result=result, read_only=op.read_only, error_code=code,
                    error_message=error.message if error is not None else None)


# ---------------------------------------------------------------------------------------------
# S3


async def handle_s3(gw: Gateway, request: web.Request, route: router.Route,
                    request_id: str) -> web.StreamResponse:
    head = request.method == "HEAD"
    try:
        query = parse_query(request.query_string) if request.query_string else []
        try:
            auth = await authenticate(_view(request, query, True), gw.identities.lookup,
                                      now=datetime.now(timezone.utc), region=gw.settings.region,
                                      s3_vhost_bucket=route.bucket)
        except AuthError as err:
            return s3_error.error_response(err.code, err.message, err.http_status, request_id,
                                           details=err.details, head=head)
        identity = None if auth.anonymous else auth.principal
        caller = _caller(gw, request, identity, None if auth.anonymous else auth, request_id)  # type: ignore[arg-type]
        if gw.s3_handle is None:
            return s3_error.error_response(
                "NotImplemented", "A header you provided implies functionality that is not "
                "implemented", 501, request_id, head=head)
        ctx = RequestContext(
            settings=gw.settings, auth=auth, caller=caller,
            request_id=request_id, service="s3", channel=gw.channels["s3"], stub=gw.s3_stub,
            audit=gw.audit, bucket=route.bucket, received_at=time.time(),
            _metadata=caller_metadata(caller))
        return await gw.s3_handle(request, ctx)
    except asyncio.CancelledError:
        raise
    except AwsError as err:
        return s3_error.error_response(err.code, err.message, err.http_status, request_id,
                                       details=err.details, head=head)
    except AuthError as err:
        return s3_error.error_response(err.code, err.message, err.http_status, request_id,
                                       details=err.details, head=head)
    except Exception as exc:  # noqa: BLE001
        _unexpected("s3", exc, request_id)
        return s3_error.error_response("InternalError", "We encountered an internal error. "
                                       "Please try again.", 500, request_id, head=head)


# ---------------------------------------------------------------------------------------------
# entry points


async def dispatch(request: web.Request) -> web.StreamResponse:
    gw = request.app[GATEWAY]
    try:
        query = parse_query(request.query_string) if request.query_string else []
        route = router.classify(request.method, request.headers, query, request.host)
    except Exception as exc:  # noqa: BLE001
        request_id = new_s3_request_id()
        _unexpected("route", exc, request_id)
        return s3_error.error_response("InternalError", "We encountered an internal error. "
                                       "Please try again.", 500, request_id)
    # S3 answers with its own style of request id (16 base32 characters); the JSON and Query
    # services with a UUID.
    request_id = str(uuid.uuid4()) if route.protocol in (router.JSON, router.QUERY) else new_s3_request_id()
    if route.protocol == router.JSON:
        return await handle_json(gw, request, route, request_id)
    if route.protocol == router.QUERY:
        return await handle_query(gw, request, route, request_id)
    return await handle_s3(gw, request, route, request_id)


async def backend_status(channel: grpc.aio.Channel, timeout: float = 1.0) -> str:
    try:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    except grpc.aio.AioRpcError as exc:
        return "UNAVAILABLE" if exc.code() in (grpc.StatusCode.UNAVAILABLE,
                                               grpc.StatusCode.DEADLINE_EXCEEDED) else "UNKNOWN"


async def health(request: web.Request) -> web.Response:
    gw = request.app[GATEWAY]
    names = list(BACKENDS)
    statuses = await asyncio.gather(*(backend_status(gw.channels[n]) for n in names))
    services = dict(zip(names, statuses, strict=True))
    services["gateway"] = "SERVING"
    ok = all(s == "SERVING" for s in services.values())
    return web.json_response({"status": "ok" if ok else "unavailable", "services": services},
                             status=200 if ok else 503)


# ---------------------------------------------------------------------------------------------
# lifetimes


def _targets(settings: Settings) -> dict[str, str]:
    return {"kms": settings.kms_target, "s3": settings.s3_target, "trail": settings.trail_target}


async def _channels_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    channels = {name: grpc.aio.insecure_channel(target, options=GRPC_CHANNEL_OPTIONS)
                for name, target in _targets(settings).items()}
    app[CHANNELS] = channels
    yield
    await asyncio.gather(*(c.close() for c in channels.values()), return_exceptions=True)


def audit_ctx_factory(sink: AuditSink | None = None) -> Callable[[web.Application], AsyncIterator[None]]:
    async def _audit_ctx(app: web.Application) -> AsyncIterator[None]:
        if sink is not None:
            app[AUDIT] = sink
            yield
            return
        settings = app[SETTINGS]
        try:
            from common.audit_outbox import OutboxSink
        except ImportError:
            app[AUDIT] = MemorySink()
            yield
            return
        outbox = OutboxSink(settings, settings.service_dir("gateway") / "audit-outbox.db",
                            sender="gateway")
        await outbox.start()
        app[AUDIT] = outbox
        try:
            yield
        finally:
            await outbox.aclose()
    return _audit_ctx


def iam_ctx_factory(root: tuple[str, str]) -> Callable[[web.Application], AsyncIterator[None]]:
    async def _iam_ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        folder = settings.service_dir("gateway")
        key_path = folder / "iam.key"
        box = SecretBox.load_or_create(key_path)
        store = await IamStore.open(folder / "iam.db")
        created = datetime.fromtimestamp(key_path.stat().st_mtime, timezone.utc).replace(microsecond=0)
        identities = IdentityResolver(account_id=settings.account_id, store=store, box=box,
                                      root_access_key_id=root[0], root_secret_access_key=root[1])
        iam = IamService(account_id=settings.account_id, store=store, box=box,
                         account_created=created)
        sts = StsService(account_id=settings.account_id, store=store, box=box)
        app[IAM_PARTS] = (identities, iam, sts)

        async def purge() -> None:
            while True:
                try:
                    if await sts.purge_expired():
                        identities.invalidate()
                except Exception:  # noqa: BLE001
                    log.error("session_purge_failed", exc_info=True)
                await asyncio.sleep(SESSION_PURGE_SECONDS)

        task = asyncio.create_task(purge(), name="sts-session-purge")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await store.close()
    return _iam_ctx


async def _gateway_ctx(app: web.Application) -> AsyncIterator[None]:
    identities, iam, sts = app[IAM_PARTS]
    app[GATEWAY] = Gateway(settings=app[SETTINGS], channels=app[CHANNELS], identities=identities,
                           iam=iam, sts=sts, audit=app[AUDIT])  # type: ignore[arg-type]
    yield


def make_app(settings: Settings, root_credentials: tuple[str, str], *,
             audit: AuditSink | None = None) -> web.Application:
    app = web.Application(client_max_size=CLIENT_MAX_SIZE)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_channels_ctx)
    app.cleanup_ctx.append(audit_ctx_factory(audit))
    app.cleanup_ctx.append(iam_ctx_factory(root_credentials))
    app.cleanup_ctx.append(_gateway_ctx)
    app.router.add_get(HEALTH_PATH, health)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
