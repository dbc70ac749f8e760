"""Terraform schemas derived from the resource bodies (``catalog.domain.bodies``).

One attribute per field, one list of nested blocks per list of bodies and one list of at most one
nested block per optional body (``X | None``: Terraform states hold it as a list of zero or one
item), named and described as the field is. A field without a default is required; one defaulting to None is optional; one with
another default is optional and computed (the plan shows the default). The body's
``replaced_by`` fields require replacement. ``str`` is a String, ``bool`` a Bool, ``int`` and ``float`` a Number (the
resources refuse fractions of an ``int`` in ``validate``; the plugin protocol has no integer type), lists and maps of them
Lists and Maps; ``X | None`` and ``X | str`` (a value or a Terraform expression) are X.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import UnionType
from typing import Any, TypeGuard, Union, get_args, get_origin

from tf.blocks import SetNestedBlock
from tf.gen import tfplugin_pb2 as pb
from tf.schema import Attribute, Block, Schema
from tf.types import Bool, List, Map, Number, String, TfType, Unknown

from catalog.domain.bodies import Body

__all__ = ["ListNestedBlock", "body_schema", "is_whole"]


class ListNestedBlock(SetNestedBlock):  # type: ignore[misc]  # tf has no types: its SetNestedBlock is Any
    """A nested block list (``tf`` ships only set and single): ordered, compared item by item."""

    def to_pb(self) -> pb.Schema.NestedBlock:
        message = super().to_pb()
        message.nesting = pb.Schema.NestedBlock.NestingMode.LIST
        return message

    def decode(self, value: Any) -> Any:
        return value if value is None else super().decode(value)

    def encode(self, value: Any) -> Any:
        return value if value is None else super().encode(value)

    def semantically_equal(self, a_decoded: object, b_decoded: object) -> bool:
        return a_decoded == b_decoded


def is_whole(value: object) -> TypeGuard[int | float]:
    """Whether a known number is a whole one (what an ``int`` field may hold)."""
    return not isinstance(value, bool) and isinstance(value, int | float) and value == int(value)


def _chosen(annotation: Any) -> Any:
    """A union's first member that is not None: ``list[str] | str`` -> ``list[str]``."""
    if get_origin(annotation) in (Union, UnionType):
        return next(arg for arg in get_args(annotation) if arg is not type(None))
    return annotation


def _tf_type(annotation: Any) -> TfType:
    annotation = _chosen(annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is str:
        return String()
    if annotation is bool:
        return Bool()
    if annotation in (int, float):
        return Number()
    if origin is list:
        return List(_tf_type(args[0]))
    if origin is dict and args[0] is str:
        return Map(_tf_type(args[1]))
    raise TypeError(f"no Terraform type for {annotation!r}")


def _nested(annotation: Any) -> tuple[type[Body], int | None] | None:
    """The body of a list of bodies (a list of nested blocks) or of one optional body (a list of at
    most one), with the most items; else None."""
    annotation = _chosen(annotation)
    if isinstance(annotation, type) and issubclass(annotation, Body):
        return annotation, 1
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        if isinstance(item, type) and issubclass(item, Body):
            return item, None
    return None


def _block(body: type[Body]) -> Block:
    attributes, blocks = [], []
    for name, field in body.model_fields.items():
        nested = _nested(field.annotation)
        if nested is not None:
            item, most = nested
            block = ListNestedBlock(name, _block(item))
            block.max_items = most
            blocks.append(block)
            continue
        required = field.is_required()
        planned = not required and field.default is not None
        attributes.append(
            Attribute(
                name,
                _tf_type(field.annotation),
                description=field.description,
                required=required,
                optional=not required,
                computed=planned,
                requires_replace=name in body.replaced_by,
                default=field.default if planned else Unknown,
            )
        )
    return Block(attributes=attributes, block_types=blocks)


def body_schema(body: type[Body], computed: Sequence[Attribute] = (), version: int | None = None) -> Schema:
    """The schema of a resource whose configuration is ``body`` and whose results are ``computed``."""
    block = _block(body)
    return Schema(attributes=[*block.attributes, *computed], block_types=block.block_types, version=version)
