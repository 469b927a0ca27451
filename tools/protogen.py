"""Generate a Strongroom ``.proto`` from a botocore service model (``service-2.json``).

One generator for every AWS-compatible service; each service passes a :class:`ServiceSpec`
(``services/kms/tools/gen_proto.py``, ``services/s3/protogen.py``) and runs
``python -m <that module>``. Conventions, applied mechanically:

* One RPC per AWS operation, named exactly as the operation (every operation of the model in
  model order, or the spec's ``operations`` in that order), taking ``<Op>Request`` and
  returning ``<Op>Response``. An operation without input/output gets an empty message.
* ``<Op>Request``/``<Op>Response`` carry the members of the operation's input/output shape;
  a nested structure becomes a message named after its botocore shape, emitted once.
* Field number = 1-based position of the member in the shape (model order), so numbers and
  names are a wire contract: regenerate only together with every user of the generated code.
  Field name = the member name in snake_case (:func:`snake`, Python keywords get a trailing
  ``_``); ``json_name`` = the AWS member name.
* Types: string -> ``string`` (AWS enums too, as AWS's exact values), blob -> ``bytes``
  (streaming blobs such as S3's ``Body`` included), boolean -> ``bool``, integer -> ``int32``,
  long -> ``int64``, float -> ``float``, double -> ``double``, timestamp ->
  ``google.protobuf.Timestamp``, list -> ``repeated``, map -> ``map<K, V>``, structure ->
  message. Lists of lists and maps of lists/maps are rejected.
* Presence: a member whose shape type is in ``ServiceSpec.optional_types`` is ``optional``
  (KMS: integers/booleans; S3: every scalar); messages always have presence.
* ``ServiceSpec.annotate``: trailing comment with the allowed enum values and ``(required)``.
* Message order: depth-first from the RPCs in order, each message at its first reference;
  a message precedes the messages it introduces, or follows them with ``nested_first``.
* Layout: header comment, ``syntax``/``package``/timestamp import, the service block, then
  every message separated by a blank line.

Per-service hooks: header text, operation subset, client/server streaming RPCs, extra
(non-AWS) fields appended to request/response messages, internal RPCs and their messages.
Field numbers and names must be unique within a message; the generator checks it.
"""

from __future__ import annotations

import argparse
import difflib
import keyword
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

REPO_ROOT = Path(__file__).resolve().parents[1]

Side = Literal["request", "response"]
Label = Literal["", "optional", "repeated"]

SCALARS: Mapping[str, str] = {
    "string": "string", "blob": "bytes", "boolean": "bool", "integer": "int32", "long": "int64",
    "float": "float", "double": "double", "timestamp": "google.protobuf.Timestamp",
}
#: ``optional`` for integers and booleans only (strings/blobs: empty means absent).
OPTIONAL_NUMBERS: frozenset[str] = frozenset({"boolean", "integer", "long"})
#: ``optional`` for every scalar: absent differs from false / 0 / "" / b"".
OPTIONAL_SCALARS: frozenset[str] = frozenset(
    {"string", "blob", "boolean", "integer", "long", "float", "double"})


def snake(name: str) -> str:
    """AWS member name -> proto field name: ``SSECustomerKeyMD5`` -> ``sse_customer_key_md5``,
    ``ChecksumCRC32C`` -> ``checksum_crc32c``; Python keywords get a ``_`` (``Or`` -> ``or_``)."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z])([A-Z])", r"\1_\2", s)
    s = re.sub(r"([0-9])([A-Z][a-z])", r"\1_\2", s).lower()
    return s + "_" if keyword.iskeyword(s) else s


def _comment(text: str, indent: str) -> list[str]:
    return [f"{indent}// {line}".rstrip() for line in text.splitlines()]


@dataclass(frozen=True)
class Field:
    """One field; ``doc`` is written as comment lines above it, ``comment`` after it."""

    type: str
    name: str
    number: int
    json_name: str
    label: Label = ""
    comment: str = ""
    doc: str = ""

    def render(self) -> list[str]:
        label = f"{self.label} " if self.label else ""
        trailing = f" // {self.comment}" if self.comment else ""
        line = f'  {label}{self.type} {self.name} = {self.number} [json_name = "{self.json_name}"];'
        return [*_comment(self.doc, "  "), line + trailing]


@dataclass(frozen=True)
class Message:
    name: str
    fields: tuple[Field, ...] = ()

    def __post_init__(self) -> None:
        for attr in ("number", "name"):
            values = [getattr(f, attr) for f in self.fields]
            dupes = sorted({str(v) for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"message {self.name}: duplicate field {attr}s {', '.join(dupes)}")

    def render(self) -> list[str]:
        return [f"message {self.name} {{", *(line for f in self.fields for line in f.render()), "}"]


@dataclass(frozen=True)
class Rpc:
    name: str
    request: str
    response: str
    client_streaming: bool = False
    server_streaming: bool = False
    doc: str = ""

    @classmethod
    def named(cls, name: str, doc: str = "") -> Rpc:
        """``rpc Name(NameRequest) returns (NameResponse)``."""
        return cls(name, f"{name}Request", f"{name}Response", doc=doc)

    def render(self) -> list[str]:
        req = f"stream {self.request}" if self.client_streaming else self.request
        resp = f"stream {self.response}" if self.server_streaming else self.response
        return [*_comment(self.doc, "  "), f"  rpc {self.name}({req}) returns ({resp});"]


ExtraFields = Callable[[str, Side], Sequence[Field]]


def _no_extra_fields(op: str, side: Side) -> Sequence[Field]:
    return ()


@dataclass(frozen=True)
class ServiceSpec:
    """What differs between services; everything else is the shared convention above."""

    botocore_name: str                      # "kms", "s3"
    proto_path: str                         # relative to the repository root
    package: str                            # "strongroom.kms.v1"
    service: str                            # gRPC service name
    header: str                             # plain text, written as the file's leading comment
    operations: tuple[str, ...] | None = None   # None: every operation, in model order
    optional_types: frozenset[str] = OPTIONAL_NUMBERS
    annotate: bool = False                  # trailing "// ENUM | VALUES (required)" comments
    nested_first: bool = False              # messages after the nested messages they introduce
    client_streaming: frozenset[str] = frozenset()
    server_streaming: frozenset[str] = frozenset()
    extra_fields: ExtraFields = _no_extra_fields   # (operation, side) -> non-AWS fields
    internal_banner: str = ""               # comment above the internal RPCs
    internal_rpcs: tuple[Rpc, ...] = ()
    internal_messages: tuple[Message, ...] = ()

    @property
    def path(self) -> Path:
        return REPO_ROOT / self.proto_path


def load_model(botocore_name: str) -> dict[str, Any]:
    from botocore.loaders import Loader

    model: dict[str, Any] = Loader().load_service_model(botocore_name, "service-2")
    return model


class _Builder:
    def __init__(self, spec: ServiceSpec, model: Mapping[str, Any]) -> None:
        self.spec = spec
        self.shapes: Mapping[str, Any] = model["shapes"]
        self.messages: dict[str, Message | None] = {}   # None: being built
        self.sources: dict[str, str | None] = {}         # message -> botocore shape
        self.order: list[str] = []

    def message(self, name: str, shape_name: str | None, extra: Sequence[Field] = ()) -> None:
        if name in self.messages:
            if self.sources[name] != shape_name or extra:
                raise ValueError(f"message {name} emitted twice (shapes {self.sources[name]}, {shape_name})")
            return
        self.messages[name] = None
        self.sources[name] = shape_name
        if not self.spec.nested_first:
            self.order.append(name)
        fields: list[Field] = []
        if shape_name is not None:
            shape = self.shapes[shape_name]
            required = set(shape.get("required", ()))
            for number, (member, ref) in enumerate(shape.get("members", {}).items(), start=1):
                fields.append(self.member(member, ref["shape"], number, member in required))
        self.messages[name] = Message(name, (*fields, *extra))
        if self.spec.nested_first:
            self.order.append(name)

    def member(self, member: str, shape_name: str, number: int, required: bool) -> Field:
        kind = self.shapes[shape_name]["type"]
        label: Label = ""
        if kind == "list":
            label = "repeated"
            typ, enum = self.element_type(self.shapes[shape_name]["member"]["shape"], shape_name)
        else:
            if kind in self.spec.optional_types:
                label = "optional"
            typ, enum = self.element_type(shape_name, shape_name)
        notes: list[str] = []
        if self.spec.annotate:
            if enum:
                notes.append(" | ".join(enum))
            if required:
                notes.append("(required)")
        return Field(typ, snake(member), number, member, label, " ".join(notes))

    def element_type(self, shape_name: str, context: str) -> tuple[str, Sequence[str]]:
        """(proto type, enum values) of a non-list shape."""
        shape = self.shapes[shape_name]
        kind = shape["type"]
        if kind == "structure":
            self.message(shape_name, shape_name)
            return shape_name, ()
        if kind == "map":
            key = self.element_type(shape["key"]["shape"], shape_name)[0]
            value = self.element_type(shape["value"]["shape"], shape_name)[0]
            return f"map<{key}, {value}>", ()
        if kind in SCALARS:
            return SCALARS[kind], shape.get("enum", ())
        raise ValueError(f"unsupported {kind} {shape_name} inside {context}")


def generate(spec: ServiceSpec, model: Mapping[str, Any] | None = None) -> str:
    """The .proto text for ``spec`` (botocore's installed model unless ``model`` is given)."""
    if model is None:
        model = load_model(spec.botocore_name)
    build = _Builder(spec, model)
    operations = model["operations"]
    rpcs: list[Rpc] = []
    for op in spec.operations if spec.operations is not None else tuple(operations):
        rpc = Rpc(op, f"{op}Request", f"{op}Response",
                  op in spec.client_streaming, op in spec.server_streaming)
        shape = operations[op]
        build.message(rpc.request, shape.get("input", {}).get("shape"), spec.extra_fields(op, "request"))
        build.message(rpc.response, shape.get("output", {}).get("shape"), spec.extra_fields(op, "response"))
        rpcs.append(rpc)
    unknown = (spec.client_streaming | spec.server_streaming) - {r.name for r in rpcs}
    if unknown:
        raise ValueError(f"streaming overrides for unknown RPCs: {sorted(unknown)}")

    lines = [*_comment(spec.header, ""),
             'syntax = "proto3";', "",
             f"package {spec.package};", "",
             'import "google/protobuf/timestamp.proto";', "",
             f"service {spec.service} {{",
             *(line for rpc in rpcs for line in rpc.render())]
    if spec.internal_rpcs:
        if spec.internal_banner:
            lines += ["", *_comment(spec.internal_banner, "  ")]
        for rpc in spec.internal_rpcs:
            lines += ["", *rpc.render()]
    lines += ["}", ""]
    messages = [build.messages[name] for name in build.order]
    for message in [*messages, *spec.internal_messages]:
        assert message is not None
        lines += [*message.render(), ""]
    return "\n".join(lines)


def main(spec: ServiceSpec, argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Command line of the per-service scripts: write (or ``--check``) the generated proto."""
    parser = argparse.ArgumentParser(prog=prog, description=f"Generate {spec.proto_path} from "
                                     f"botocore's {spec.botocore_name} service model.")
    parser.add_argument("--out", type=Path, default=spec.path,
                        help=f"file to write (default: {spec.proto_path})")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the file differs from the generated text")
    args = parser.parse_args(argv)
    text = generate(spec)
    out: Path = args.out
    if args.check:
        current = out.read_text() if out.exists() else ""
        if current == text:
            print(f"{out} is up to date", file=sys.stderr)
            return 0
        diff = difflib.unified_diff(current.splitlines(keepends=True), text.splitlines(keepends=True),
                                    str(out), "generated")
        sys.stderr.writelines(diff)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}", file=sys.stderr)
    return 0
