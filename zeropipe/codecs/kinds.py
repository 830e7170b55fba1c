"""Field kinds as proto3 descriptors declare them, for every place that builds a descriptor.

The protobuf codec builds ``FileDescriptorProto`` objects at run time from message classes,
and codegen builds the ones that generated modules embed from its IR; both declare their
fields with :func:`add_fields`, so the two agree with each other and with protoc. Nothing
here imports protobuf: the descriptor objects are passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from .model import json_name_of

__all__ = [
    "LABEL_OPTIONAL",
    "LABEL_REPEATED",
    "PROTO_TYPES",
    "ProtoField",
    "add_fields",
    "map_entry_name",
]

#: descriptor.proto's FieldDescriptorProto.Type of each kind (fixed by the protobuf spec).
PROTO_TYPES = {
    "double": 1,
    "int64": 3,
    "int32": 5,
    "bool": 8,
    "string": 9,
    "message": 11,
    "bytes": 12,
    "enum": 14,
}
#: descriptor.proto's FieldDescriptorProto.Label values used by proto3.
LABEL_OPTIONAL, LABEL_REPEATED = 1, 3


class ProtoField(Protocol):
    """What :func:`add_fields` reads of a field (a model ``FieldSpec`` or a codegen IR field)."""

    @property
    def name(self) -> str: ...

    @property
    def number(self) -> int: ...

    @property
    def kind(self) -> str: ...

    @property
    def repeated(self) -> bool: ...

    @property
    def key_kind(self) -> str | None: ...

    @property
    def optional(self) -> bool: ...

    @property
    def is_map(self) -> bool: ...


def map_entry_name(field_name: str) -> str:
    """protoc's name for the entry type of a map field: ``by_venue`` -> ``ByVenueEntry``."""
    camel = json_name_of(field_name)
    return camel[:1].upper() + camel[1:] + "Entry"


def add_fields(
    message: Any,
    full_name: str,
    fields: Iterable[tuple[ProtoField, str | None]],
    *,
    optional_messages: bool,
) -> None:
    """Declare ``fields`` in ``message``, the ``DescriptorProto`` of message ``full_name``, as
    protoc does for proto3.

    Each field comes with the full name of its enum or message type (None for a scalar). A
    map field gets its ``<Name>Entry`` type nested in ``message``; an optional field is a
    proto3 ``optional`` field with its synthetic oneof, a message field only when
    ``optional_messages`` (``optional Inner x`` in a ``.proto``; a message field has presence
    without it).
    """
    synthetic: list[str] = []
    for f, type_name in fields:
        fd = message.field.add(name=f.name, number=f.number, json_name=json_name_of(f.name))
        if f.is_map:
            entry = message.nested_type.add(name=map_entry_name(f.name))
            entry.options.map_entry = True
            key = entry.field.add(name="key", number=1, json_name="key", label=LABEL_OPTIONAL)
            _set_type(key, f.key_kind or "string", None)
            value = entry.field.add(name="value", number=2, json_name="value", label=LABEL_OPTIONAL)
            _set_type(value, f.kind, type_name)
            fd.label = LABEL_REPEATED
            _set_type(fd, "message", f"{full_name}.{entry.name}")
            continue
        fd.label = LABEL_REPEATED if f.repeated else LABEL_OPTIONAL
        _set_type(fd, f.kind, type_name)
        if f.optional and (optional_messages or f.kind != "message"):
            fd.proto3_optional = True
            fd.oneof_index = len(synthetic)
            synthetic.append("_" + f.name)
    for name in synthetic:
        message.oneof_decl.add(name=name)


def _set_type(fd: Any, kind: str, type_name: str | None) -> None:
    fd.type = PROTO_TYPES[kind]
    if type_name is not None:
        fd.type_name = "." + type_name
