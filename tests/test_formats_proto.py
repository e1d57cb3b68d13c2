"""record_pb2: imports, round-trips, and matches record.proto field by field."""
from __future__ import annotations

import re
from pathlib import Path

from google.protobuf import descriptor_pb2

from s2s_aws.contract import record_pb2

PROTO = Path(record_pb2.__file__).with_name("record.proto")

_SCALARS = {
    "float": "TYPE_FLOAT", "double": "TYPE_DOUBLE", "int32": "TYPE_INT32", "uint64": "TYPE_UINT64",
    "bytes": "TYPE_BYTES", "string": "TYPE_STRING",
}


def _parse_proto(text: str) -> dict[str, dict[str, tuple]]:
    """A tiny parser for the subset of proto2 that record.proto uses."""
    text = re.sub(r"//[^\n]*", "", text)
    assert re.search(r'syntax\s*=\s*"proto2"\s*;', text)
    assert re.search(r"package\s+aialgs\.data\s*;", text)
    messages: dict[str, dict[str, tuple]] = {}
    for name, body in re.findall(r"message\s+(\w+)\s*\{((?:[^{}]|\{[^{}]*\})*)\}", text):
        fields: dict[str, tuple] = {}
        oneof = re.search(r"oneof\s+(\w+)\s*\{([^}]*)\}", body)
        if oneof:
            for ftype, fname, num in re.findall(r"(\w+)\s+(\w+)\s*=\s*(\d+)\s*;", oneof.group(2)):
                fields[fname] = ("optional", ftype, int(num), False, oneof.group(1))
            body = body.replace(oneof.group(0), "")
        for ktype, vtype, fname, num in re.findall(r"map<\s*(\w+)\s*,\s*(\w+)\s*>\s+(\w+)\s*=\s*(\d+)\s*;", body):
            fields[fname] = ("map", (ktype, vtype), int(num), False, None)
        for label, ftype, fname, num, opts in re.findall(
                r"(repeated|optional|required)\s+(\w+)\s+(\w+)\s*=\s*(\d+)\s*(\[[^\]]*\])?\s*;", body):
            fields[fname] = (label, ftype, int(num), "packed = true" in opts, None)
        messages[name] = fields
    return messages


def _python_descriptor() -> dict[str, dict[str, tuple]]:
    fdp = descriptor_pb2.FileDescriptorProto()
    record_pb2.DESCRIPTOR.CopyToProto(fdp)
    assert fdp.package == "aialgs.data"
    assert fdp.syntax in ("proto2", "")
    F = descriptor_pb2.FieldDescriptorProto
    out: dict[str, dict[str, tuple]] = {}
    for msg in fdp.message_type:
        entries = {n.name: n for n in msg.nested_type if n.options.map_entry}
        fields: dict[str, tuple] = {}
        for f in msg.field:
            short_type = f.type_name.rsplit(".", 1)[-1]
            if f.type == F.TYPE_MESSAGE and short_type in entries:
                entry = {e.name: e for e in entries[short_type].field}
                key_type = F.Type.Name(entry["key"].type)
                value_type = entry["value"].type_name.rsplit(".", 1)[-1]
                ktype = next(k for k, v in _SCALARS.items() if v == key_type)
                fields[f.name] = ("map", (ktype, value_type), f.number, False, None)
                continue
            if f.type == F.TYPE_MESSAGE:
                ftype = short_type
            else:
                ftype = next(k for k, v in _SCALARS.items() if v == F.Type.Name(f.type))
            label = {F.LABEL_REPEATED: "repeated", F.LABEL_OPTIONAL: "optional"}[f.label]
            oneof = msg.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") else None
            fields[f.name] = (label, ftype, f.number, f.options.packed, oneof)
        out[msg.name] = fields
    return out


def test_python_descriptor_matches_record_proto():
    declared = _parse_proto(PROTO.read_text(encoding="utf-8"))
    assert set(declared) == {"Float32Tensor", "Float64Tensor", "Int32Tensor", "Bytes", "Value", "Record"}
    assert declared["Int32Tensor"]["values"] == ("repeated", "int32", 1, True, None)
    assert declared["Value"]["int32_tensor"] == ("optional", "Int32Tensor", 7, False, "value")
    assert _python_descriptor() == declared


def test_round_trip_every_message_kind():
    r = record_pb2.Record(uid="u1", metadata="m", configuration="c")
    r.features["source"].int32_tensor.values.extend([4, -5, 2**31 - 1])
    r.features["f"].float32_tensor.values.extend([0.5, 1.5])
    r.features["f"].float32_tensor.shape.append(2)
    r.features["d"].float64_tensor.values.append(0.25)
    r.label["b"].bytes.value.append(b"\x00\xff")
    r.label["b"].bytes.content_type = "application/octet-stream"
    back = record_pb2.Record()
    back.ParseFromString(r.SerializeToString())
    assert back == r
    assert list(back.features["source"].int32_tensor.values) == [4, -5, 2**31 - 1]
    assert back.features["f"].WhichOneof("value") == "float32_tensor"
    assert back.label["b"].bytes.content_type == "application/octet-stream"
    assert back.uid == "u1"


def test_packed_encoding_on_the_wire():
    t = record_pb2.Int32Tensor()
    t.values.extend([1, 2, 300])
    # field 1, wire type 2 (packed), 4 bytes: 01 02 ac 02
    assert t.SerializeToString() == bytes.fromhex("0a040102ac02")


def test_messages_live_in_a_private_pool():
    from google.protobuf import descriptor_pool

    assert record_pb2.POOL is not descriptor_pool.Default()
    assert record_pb2.Record.DESCRIPTOR.full_name == "aialgs.data.Record"
