"""The one generic mapping between AWS values and protobuf messages.

**AWS values** are what the protocol parsers produce and the serialisers consume: a request
or response as a ``dict`` keyed by AWS member names (botocore shape members), with typed
leaves: ``str`` (strings and enums), ``int``, ``float``, ``bool``, ``bytes`` (blobs),
``datetime`` (timestamps, aware UTC), ``list`` and ``dict`` (maps and nested structures).

**Protobuf messages** follow the proto conventions (protos/*): one ``<Op>Request`` /
``<Op>Response`` per RPC; each field mapped to an AWS member carries ``json_name`` equal to
the member name. Only fields whose json_name is a member of the operation's shape are mapped;
other proto fields (service-internal extras) and members without a field are ignored.

Request direction (:func:`to_message`): each member present in the AWS dict sets its field;
a blob is bytes, a timestamp becomes ``google.protobuf.Timestamp``, a list a repeated field,
a map a ``map<>`` field, a structure a nested message.

Response direction (:func:`from_message`, via ``Message.ListFields``): a field that is *set*
is written, i.e. an ``optional`` scalar when present (even if false/0), a plain scalar when
non-zero/non-empty, a message when present, a repeated/map field when non-empty; in addition
the operation's top-level list and map members are always written (``{"Keys": []}``), as AWS
does for list operations. Leaves are rendered in one of two styles:

* ``JSON``:  blob -> base64 text, timestamp -> epoch seconds (float) — AWS JSON 1.1;
* ``VALUE``: blob -> bytes, timestamp -> datetime — typed AWS values (Query/XML serialisers).

Converters are compiled once per (shape, message descriptor, style) and cached
(keyed by spec.shape_key, so recursive shapes terminate).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from botocore.model import Shape
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.aws.spec import shape_key

JSON = "json"
VALUE = "value"

_TIMESTAMP = "google.protobuf.Timestamp"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

ToField = Callable[[Any], Any]
FromField = Callable[[Any], Any]


class BindingError(TypeError):
    """A proto field's type cannot carry the AWS member it is named after (a proto bug)."""


# ---------------------------------------------------------------------------------------------
# request: AWS value -> message


def _is_map(fd: FieldDescriptor) -> bool:
    return (fd.type == FieldDescriptor.TYPE_MESSAGE and fd.message_type is not None
            and fd.message_type.GetOptions().map_entry)


def datetime_to_timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    ts.FromDatetime(value)
    return ts


def timestamp_to_datetime(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=timezone.utc)


def timestamp_to_epoch(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


def _scalar_to_field(shape: Shape, fd: FieldDescriptor) -> ToField | None:
    """Converter for one non-repeated value of ``shape`` into a field of type ``fd``."""
    kind = shape.type_name
    t = fd.type
    if t == FieldDescriptor.TYPE_MESSAGE:
        if fd.message_type.full_name == _TIMESTAMP:
            if kind == "timestamp":
                return datetime_to_timestamp
            raise BindingError(f"{fd.full_name}: Timestamp field for AWS {kind}")
        if kind == "structure":
            build = message_builder(shape, fd.message_type)
            return build
        raise BindingError(f"{fd.full_name}: message field for AWS {kind}")
    if t == FieldDescriptor.TYPE_ENUM:
        values = fd.enum_type.values_by_name
        return lambda v: values[v].number if v in values else 0
    if kind == "timestamp":
        if t == FieldDescriptor.TYPE_STRING:
            return lambda v: v.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            return lambda v: (v - _EPOCH).total_seconds()
        return lambda v: int((v - _EPOCH).total_seconds())
    if t == FieldDescriptor.TYPE_BYTES:
        if kind == "blob":
            return None
        return lambda v: v.encode() if isinstance(v, str) else bytes(v)
    if t == FieldDescriptor.TYPE_STRING:
        if kind == "string":
            return None
        if kind == "blob":
            return lambda v: base64.b64encode(v).decode()
        if kind == "boolean":
            return lambda v: "true" if v else "false"
        return str
    if t == FieldDescriptor.TYPE_BOOL:
        return None if kind == "boolean" else bool
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return float
    # integer fields
    if kind in ("integer", "long"):
        return None
    return int


def _field_setter(shape: Shape, fd: FieldDescriptor) -> ToField | None:
    """Converter from an AWS value of ``shape`` to what the field constructor accepts."""
    if _is_map(fd):
        if shape.type_name != "map":
            raise BindingError(f"{fd.full_name}: map field for AWS {shape.type_name}")
        vfd = fd.message_type.fields_by_name["value"]
        conv = _scalar_to_field(shape.value, vfd)
        if conv is None:
            return None
        return lambda v: {k: conv(x) for k, x in v.items()}
    if fd.is_repeated:
        if shape.type_name != "list":
            raise BindingError(f"{fd.full_name}: repeated field for AWS {shape.type_name}")
        conv = _scalar_to_field(shape.member, fd)
        if conv is None:
            return None
        return lambda v: [conv(x) for x in v]
    if shape.type_name in ("list", "map"):
        raise BindingError(f"{fd.full_name}: singular field for AWS {shape.type_name}")
    return _scalar_to_field(shape, fd)


_builders: dict[tuple[int, str, str], tuple[Shape, Callable[[dict[str, Any]], Message]]] = {}


def message_builder(shape: Shape, descriptor: Descriptor) -> Callable[[dict[str, Any]], Message]:
    """A compiled function: AWS structure value of ``shape`` -> message of ``descriptor``."""
    key = (*shape_key(shape), descriptor.full_name)
    hit = _builders.get(key)
    if hit is not None:
        return hit[1]
    from google.protobuf import message_factory

    cls = message_factory.GetMessageClass(descriptor)
    table: dict[str, tuple[str, ToField | None]] = {}

    def build(value: dict[str, Any]) -> Message:
        kwargs = {}
        for name, v in value.items():
            entry = table.get(name)
            if entry is None or v is None:
                continue
            field_name, conv = entry
            kwargs[field_name] = v if conv is None else conv(v)
        return cls(**kwargs)

    _builders[key] = (shape, build)  # before compiling members: recursive shapes
    members = shape.members if shape.type_name == "structure" else {}
    by_json = {fd.json_name: fd for fd in descriptor.fields}
    for name, member in members.items():
        fd = by_json.get(name)
        if fd is not None:
            table[name] = (fd.name, _field_setter(member, fd))
    return build


def to_message(shape: Shape | None, descriptor: Descriptor, value: dict[str, Any]) -> Message:
    """The ``<Op>Request`` message for an AWS request value."""
    if shape is None:
        from google.protobuf import message_factory

        return message_factory.GetMessageClass(descriptor)()
    return message_builder(shape, descriptor)(value)


# ---------------------------------------------------------------------------------------------
# response: message -> AWS value


def _b64(v: bytes) -> str:
    return base64.b64encode(v).decode("ascii")


def _scalar_from_field(shape: Shape, fd: FieldDescriptor, style: str) -> FromField | None:
    kind = shape.type_name
    t = fd.type
    if t == FieldDescriptor.TYPE_MESSAGE:
        if fd.message_type.full_name == _TIMESTAMP:
            if kind != "timestamp":
                raise BindingError(f"{fd.full_name}: Timestamp field for AWS {kind}")
            return timestamp_to_epoch if style == JSON else timestamp_to_datetime
        if kind != "structure":
            raise BindingError(f"{fd.full_name}: message field for AWS {kind}")
        return message_reader(shape, fd.message_type, style)
    if t == FieldDescriptor.TYPE_ENUM:
        names = {v.number: v.name for v in fd.enum_type.values}
        return lambda v: names.get(v, "")
    if kind == "blob":
        if t == FieldDescriptor.TYPE_BYTES:
            return _b64 if style == JSON else None
        if t == FieldDescriptor.TYPE_STRING:
            return None if style == JSON else base64.b64decode
        raise BindingError(f"{fd.full_name}: {t} field for AWS blob")
    if kind == "timestamp":
        if t == FieldDescriptor.TYPE_STRING:
            parse = datetime.fromisoformat
            return (lambda v: parse(v).timestamp()) if style == JSON else parse
        if style == JSON:
            return float
        return lambda v: datetime.fromtimestamp(v, timezone.utc)
    if kind == "string":
        return None if t == FieldDescriptor.TYPE_STRING else str
    if kind == "boolean":
        return None if t == FieldDescriptor.TYPE_BOOL else bool
    if kind in ("integer", "long"):
        return None if t not in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_DOUBLE,
                                 FieldDescriptor.TYPE_FLOAT) else int
    if kind in ("float", "double"):
        return float
    return None


def _field_getter(shape: Shape, fd: FieldDescriptor, style: str) -> FromField:
    if _is_map(fd):
        if shape.type_name != "map":
            raise BindingError(f"{fd.full_name}: map field for AWS {shape.type_name}")
        conv = _scalar_from_field(shape.value, fd.message_type.fields_by_name["value"], style)
        if conv is None:
            return dict
        return lambda v: {k: conv(x) for k, x in v.items()}
    if fd.is_repeated:
        if shape.type_name != "list":
            raise BindingError(f"{fd.full_name}: repeated field for AWS {shape.type_name}")
        conv = _scalar_from_field(shape.member, fd, style)
        if conv is None:
            return list
        return lambda v: [conv(x) for x in v]
    if shape.type_name in ("list", "map"):
        raise BindingError(f"{fd.full_name}: singular field for AWS {shape.type_name}")
    conv = _scalar_from_field(shape, fd, style)
    return conv if conv is not None else _identity


def _identity(v: Any) -> Any:
    return v


_readers: dict[tuple[int, str, str, str, bool], tuple[Shape, Callable[[Message], dict[str, Any]]]] = {}


def message_reader(shape: Shape, descriptor: Descriptor, style: str,
                   top_level: bool = False) -> Callable[[Message], dict[str, Any]]:
    """A compiled function: message of ``descriptor`` -> AWS structure value of ``shape``."""
    key = (*shape_key(shape), descriptor.full_name, style, top_level)
    hit = _readers.get(key)
    if hit is not None:
        return hit[1]
    table: dict[int, tuple[str, FromField]] = {}
    always: list[tuple[str, type]] = []

    def read(msg: Message) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for fd, v in msg.ListFields():
            entry = table.get(fd.number)
            if entry is not None:
                out[entry[0]] = entry[1](v)
        for name, empty in always:
            if name not in out:
                out[name] = empty()
        return out

    _readers[key] = (shape, read)
    by_json = {fd.json_name: fd for fd in descriptor.fields}
    for name, member in shape.members.items():
        fd = by_json.get(name)
        if fd is None:
            continue
        table[fd.number] = (name, _field_getter(member, fd, style))
        if top_level and member.type_name in ("list", "map") and (fd.is_repeated or _is_map(fd)):
            always.append((name, dict if member.type_name == "map" else list))
    return read


def from_message(shape: Shape | None, msg: Message, style: str = JSON) -> dict[str, Any]:
    """The AWS response value of an ``<Op>Response`` message."""
    if shape is None:
        return {}
    return message_reader(shape, msg.DESCRIPTOR, style, top_level=True)(msg)


# ---------------------------------------------------------------------------------------------
# contract check


def binding_problems(shape: Shape | None, descriptor: Descriptor, *, response: bool) -> list[str]:
    """Type mismatches between a proto message and the AWS shape it mirrors (for tests)."""
    if shape is None:
        return []
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()

    def walk(sh: Shape, desc: Descriptor) -> None:
        if (sh.name, desc.full_name) in seen:
            return
        seen.add((sh.name, desc.full_name))
        by_json = {fd.json_name: fd for fd in desc.fields}
        for name, member in sh.members.items():
            fd = by_json.get(name)
            if fd is None:
                continue
            try:
                if response:
                    _field_getter(member, fd, JSON)
                else:
                    _field_setter(member, fd)
            except BindingError as exc:
                problems.append(str(exc))
                continue
            inner = member
            if member.type_name == "list":
                inner = member.member
            elif member.type_name == "map":
                inner = member.value
            if inner.type_name == "structure":
                mt = fd.message_type
                if _is_map(fd):
                    mt = fd.message_type.fields_by_name["value"].message_type
                if mt is not None:
                    walk(inner, mt)

    walk(shape, descriptor)
    return problems
