"""tools/protogen.py: the generated protos equal the committed ones, and the shared rules."""

from __future__ import annotations

import difflib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from services.kms.tools import gen_proto as kms_gen
from services.s3 import protogen as s3_gen
from tools.protogen import REPO_ROOT, Field, Message, ServiceSpec, generate, snake

SPECS = {"kms": kms_gen.SPEC, "s3": s3_gen.SPEC}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_generated_proto_is_the_committed_one(name: str) -> None:
    """Field numbers and names are a wire contract: regenerating must change nothing. Fails
    also when a botocore upgrade changes the model (then review the diff, regenerate)."""
    spec = SPECS[name]
    committed = spec.path.read_text()
    generated = generate(spec)
    if generated != committed:
        diff = "".join(list(difflib.unified_diff(
            committed.splitlines(keepends=True), generated.splitlines(keepends=True),
            spec.proto_path, "generated"))[:80])
        pytest.fail(f"{spec.proto_path} differs from the generator's output:\n{diff}")


@pytest.mark.parametrize(("module", "name"), [("services.kms.tools.gen_proto", "kms"),
                                              ("services.s3.protogen", "s3")])
def test_command_line(module: str, name: str, tmp_path: Path) -> None:
    out = tmp_path / f"{name}.proto"
    run = subprocess.run([sys.executable, "-m", module, "--out", str(out)], cwd=REPO_ROOT, check=False,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert out.read_bytes() == SPECS[name].path.read_bytes()
    out.write_text(out.read_text() + "// edited\n")
    check = subprocess.run([sys.executable, "-m", module, "--check", "--out", str(out)], cwd=REPO_ROOT,
                           check=False, capture_output=True, text=True, timeout=120)
    assert check.returncode == 1 and "-// edited" in check.stderr


MODEL: dict[str, Any] = {
    "operations": {"Op": {"input": {"shape": "OpIn"}}},
    "shapes": {
        "OpIn": {"type": "structure", "required": ["Or"],
                 "members": {"Or": {"shape": "Mode"}, "Inner": {"shape": "Inner"},
                             "Count": {"shape": "Int"}, "Tags": {"shape": "Modes"}}},
        "Inner": {"type": "structure", "members": {"ChecksumCRC32C": {"shape": "Blob"}}},
        "Mode": {"type": "string", "enum": ["A", "B"]},
        "Modes": {"type": "list", "member": {"shape": "Mode"}},
        "Int": {"type": "integer"},
        "Blob": {"type": "blob"},
    },
}


def spec(**kw: Any) -> ServiceSpec:
    return ServiceSpec(botocore_name="x", proto_path="x.proto", package="p.v1", service="X",
                       header="HEADER", **kw)


def test_shared_rules_on_a_small_model() -> None:
    text = generate(spec(annotate=True), MODEL)
    assert text.startswith('// HEADER\nsyntax = "proto3";\n\npackage p.v1;\n')
    assert "  rpc Op(OpRequest) returns (OpResponse);\n" in text
    assert '  string or_ = 1 [json_name = "Or"]; // A | B (required)\n' in text
    assert '  optional int32 count = 3 [json_name = "Count"];\n' in text
    assert '  repeated string tags = 4 [json_name = "Tags"]; // A | B\n' in text
    assert '  bytes checksum_crc32c = 1 [json_name = "ChecksumCRC32C"];\n' in text
    assert text.index("message OpRequest") < text.index("message Inner") < text.index("message OpResponse")
    nested = generate(spec(nested_first=True, optional_types=frozenset({"blob"})), MODEL)
    assert nested.index("message Inner") < nested.index("message OpRequest")
    assert '  optional bytes checksum_crc32c = 1' in nested and "//" not in nested.split("service")[1]


def test_extra_fields_must_not_collide() -> None:
    clash = Field("string", "source", 2, "strongroomSource")
    with pytest.raises(ValueError, match="duplicate field numbers 2"):
        generate(spec(extra_fields=lambda op, side: (clash,) if side == "request" else ()), MODEL)
    with pytest.raises(ValueError, match="duplicate field names or_"):
        Message("M", (Field("string", "or_", 1, "Or"), Field("string", "or_", 2, "Or2")))


def test_unsupported_shapes_are_rejected() -> None:
    model = {"operations": {"Op": {"output": {"shape": "Out"}}},
             "shapes": {"Out": {"type": "structure", "members": {"L": {"shape": "LL"}}},
                        "LL": {"type": "list", "member": {"shape": "L1"}},
                        "L1": {"type": "list", "member": {"shape": "S"}},
                        "S": {"type": "string"}}}
    with pytest.raises(ValueError, match="unsupported list L1 inside LL"):
        generate(spec(), model)


@pytest.mark.parametrize(("member", "field"), [
    ("SSECustomerKeyMD5", "sse_customer_key_md5"), ("KeyId", "key_id"), ("ACL", "acl"),
    ("ChecksumCRC64NVME", "checksum_crc64nvme"), ("ListObjectsV2", "list_objects_v2"),
    ("And", "and_"), ("From", "from_"),
])
def test_snake(member: str, field: str) -> None:
    assert snake(member) == field
