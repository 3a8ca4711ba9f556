"""Conversions between ``google.protobuf.Struct`` and plain JSON-compatible Python values.

Parameters and shared metadata cross the engine/executor boundary as Structs, whose only
number type is a double. Policies expect ``3`` rather than ``3.0`` for integers written in
YAML, so integral numbers come back as ``int``. The other direction refuses anything that
is not JSON (sets, bytes, objects, NaN) with a message that says where it was found,
because the engine must be able to hand the values to TypeScript policies unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from google.protobuf import struct_pb2

# Deep enough for any real document, shallow enough to turn a self-referencing dict into a
# clear error instead of a RecursionError.
_MAX_DEPTH = 64


class NotJsonError(ValueError):
    """A value cannot be sent as JSON; the message names where it was found."""


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as a dict of plain Python values (integral numbers as ``int``)."""
    return {key: value_to_python(value) for key, value in struct.fields.items()}


def value_to_python(value: struct_pb2.Value) -> Any:
    """One Struct value as a plain Python value."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        return [value_to_python(item) for item in value.list_value.values]
    return None


def dict_to_struct(data: object, where: str) -> struct_pb2.Struct:
    """``data`` (a mapping with string keys) as a Struct; ``NotJsonError`` if it is not JSON.

    Args:
        data: The value to convert.
        where: How to name the value in error messages, e.g. ``"metadata"``.
    """
    if not isinstance(data, Mapping):
        raise NotJsonError(f"{where}: {type(data).__name__} is not a JSON object")
    struct = struct_pb2.Struct()
    _fill_struct(struct, data, where, 0)
    return struct


def _fill_struct(struct: struct_pb2.Struct, data: Mapping[Any, Any], where: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise NotJsonError(f"{where}: nested more than {_MAX_DEPTH} levels deep (a cycle?)")
    for key, item in data.items():
        if not isinstance(key, str):
            raise NotJsonError(f"{where}: key {key!r} is not a string")
        _fill_value(struct.fields[key], item, f"{where}[{key!r}]", depth + 1)


def _fill_value(target: struct_pb2.Value, item: object, where: str, depth: int) -> None:
    if item is None:
        target.null_value = struct_pb2.NULL_VALUE
    elif isinstance(item, bool):
        target.bool_value = item
    elif isinstance(item, int | float):
        try:
            number = float(item)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise NotJsonError(f"{where}: {item!r} is not a finite number")
        target.number_value = number
    elif isinstance(item, str):
        target.string_value = item
    elif isinstance(item, Mapping):
        target.struct_value.SetInParent()  # an empty object must still be an object
        _fill_struct(target.struct_value, item, where, depth)
    elif isinstance(item, list | tuple):
        if depth > _MAX_DEPTH:
            raise NotJsonError(f"{where}: nested more than {_MAX_DEPTH} levels deep (a cycle?)")
        target.list_value.SetInParent()  # an empty list must still be a list
        values = target.list_value.values
        for index, element in enumerate(item):
            _fill_value(values.add(), element, f"{where}[{index}]", depth + 1)
    else:
        raise NotJsonError(f"{where}: {type(item).__name__} is not a JSON value")
