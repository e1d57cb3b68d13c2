"""The ``aialgs.data`` Record protobuf messages (see ``record.proto`` beside this file).

Instead of protoc-generated code (which, from recent protoc releases, refuses to import under older
protobuf runtimes), the file descriptor is built here in Python with ``descriptor_pb2`` and the
message classes are made from it at import time. This works under protobuf 4.21+ up to 6.x.

The messages live in a private descriptor pool, so they never clash with another copy of
``aialgs.data`` (for example one registered by the sagemaker package) in the default pool.

Example::

    from s2s_aws.contract.record_pb2 import Record
    r = Record()
    r.features["source"].int32_tensor.values.extend([4, 5, 6])
    payload = r.SerializeToString(deterministic=True)
"""
from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = [
    "DESCRIPTOR", "POOL", "Float32Tensor", "Float64Tensor", "Int32Tensor", "Bytes", "Value", "Record",
]

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "aialgs.data"


def _field(msg: descriptor_pb2.DescriptorProto, name: str, number: int, ftype: int, *,
           label: int = _F.LABEL_OPTIONAL, type_name: str | None = None, packed: bool = False,
           oneof_index: int | None = None) -> None:
    f = msg.field.add(name=name, number=number, type=ftype, label=label)
    if type_name is not None:
        f.type_name = type_name
    if packed:
        f.options.packed = True
    if oneof_index is not None:
        f.oneof_index = oneof_index


def _tensor(file: descriptor_pb2.FileDescriptorProto, name: str, value_type: int) -> None:
    msg = file.message_type.add(name=name)
    _field(msg, "values", 1, value_type, label=_F.LABEL_REPEATED, packed=True)
    _field(msg, "keys", 2, _F.TYPE_UINT64, label=_F.LABEL_REPEATED, packed=True)
    _field(msg, "shape", 3, _F.TYPE_UINT64, label=_F.LABEL_REPEATED, packed=True)


def _map_field(msg: descriptor_pb2.DescriptorProto, name: str, number: int, value_type_name: str) -> None:
    entry_name = "".join(part.capitalize() for part in name.split("_")) + "Entry"
    entry = msg.nested_type.add(name=entry_name)
    entry.options.map_entry = True
    _field(entry, "key", 1, _F.TYPE_STRING)
    _field(entry, "value", 2, _F.TYPE_MESSAGE, type_name=value_type_name)
    _field(msg, name, number, _F.TYPE_MESSAGE, label=_F.LABEL_REPEATED,
           type_name=f".{_PACKAGE}.{msg.name}.{entry_name}")


def build_file_descriptor_proto() -> descriptor_pb2.FileDescriptorProto:
    """Return the ``FileDescriptorProto`` equivalent to ``record.proto``."""
    file = descriptor_pb2.FileDescriptorProto(name="s2s_aws/contract/record.proto", package=_PACKAGE,
                                              syntax="proto2")
    _tensor(file, "Float32Tensor", _F.TYPE_FLOAT)
    _tensor(file, "Float64Tensor", _F.TYPE_DOUBLE)
    _tensor(file, "Int32Tensor", _F.TYPE_INT32)

    msg = file.message_type.add(name="Bytes")
    _field(msg, "value", 1, _F.TYPE_BYTES, label=_F.LABEL_REPEATED)
    _field(msg, "content_type", 2, _F.TYPE_STRING)

    msg = file.message_type.add(name="Value")
    msg.oneof_decl.add(name="value")
    for name, number, type_name in (("float32_tensor", 2, "Float32Tensor"),
                                    ("float64_tensor", 3, "Float64Tensor"),
                                    ("int32_tensor", 7, "Int32Tensor"),
                                    ("bytes", 9, "Bytes")):
        _field(msg, name, number, _F.TYPE_MESSAGE, type_name=f".{_PACKAGE}.{type_name}", oneof_index=0)

    msg = file.message_type.add(name="Record")
    _map_field(msg, "features", 1, f".{_PACKAGE}.Value")
    _map_field(msg, "label", 2, f".{_PACKAGE}.Value")
    _field(msg, "uid", 3, _F.TYPE_STRING)
    _field(msg, "metadata", 4, _F.TYPE_STRING)
    _field(msg, "configuration", 5, _F.TYPE_STRING)
    return file


def _message_class(descriptor):  # noqa: ANN001, ANN202 - protobuf types vary across versions
    get_class = getattr(message_factory, "GetMessageClass", None)
    if get_class is not None:  # protobuf >= 4.22
        return get_class(descriptor)
    return message_factory.MessageFactory(POOL).GetPrototype(descriptor)  # pragma: no cover - older protobuf


POOL = descriptor_pool.DescriptorPool()
POOL.Add(build_file_descriptor_proto())
DESCRIPTOR = POOL.FindFileByName("s2s_aws/contract/record.proto")

Float32Tensor = _message_class(POOL.FindMessageTypeByName(f"{_PACKAGE}.Float32Tensor"))
Float64Tensor = _message_class(POOL.FindMessageTypeByName(f"{_PACKAGE}.Float64Tensor"))
Int32Tensor = _message_class(POOL.FindMessageTypeByName(f"{_PACKAGE}.Int32Tensor"))
Bytes = _message_class(POOL.FindMessageTypeByName(f"{_PACKAGE}.Bytes"))
Value = _message_class(POOL.FindMessageTypeByName(f"{_PACKAGE}.Value"))
Record = _message_class(POOL.FindMessageTypeByName(f"{_PACKAGE}.Record"))
