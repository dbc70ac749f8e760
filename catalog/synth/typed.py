"""Typed provider bindings at synth, without one jsii crossing per attribute.

A prebuilt CDK provider (``cdktn_provider_kubernetes``, later the AWS one) ships a Python *struct*
class per Terraform block: ``DeploymentV1Spec(template=..., replicas=...)`` refuses an unknown
keyword at once (``TypeError``) and, unless Python runs with ``-O``, checks every value's type
(jsii's typeguard checks, ~1.6 ms per struct tree). Building a struct performs no jsii call; only
constructs (``DeploymentV1(stack, ...)``) cross into Node, at ~1.5-2 ms each.

So each resource body is written once, as a *builder* ``build(k, item)`` that makes every block
through a factory ``k`` (``k.DeploymentV1Spec(...)``, never a literal dict for a block), and runs
twice over:

- with ``FAST`` for every item: ``k.X(**fields)`` is just the dict of the fields that are not None,
  i.e. Terraform JSON directly;
- with the real struct classes (``TypedFactory``) for the first item of each *variant* (a key the
  resource kind computes per item, naming its distinct code paths: artifact source kind, sticky or
  not, ...): misspelt fields and wrong types raise here, and the struct tree converted to
  Terraform JSON (``to_terraform``) must equal the fast body, so the two paths cannot drift.
  ``check="all"`` (or ``MODELCAT_SYNTH_CHECK=all``) checks every item; the tests use it.

The bodies of a resource type then go into the stack with one ``add_override`` (``emit``).

Terraform attribute names are the structs' Python field names (jsii maps them to camelCase and
the provider's ``toTerraform`` back to the same snake_case; a test compares with a real construct).

Loading a provider's jsii assembly into Node is the slow part of using it (the Kubernetes one:
~3 s), and struct classes do not need it: ``import_bindings`` imports the provider's Python
modules with that load deferred. ``load_assembly`` performs it when real constructs are wanted
(tests comparing with cdktn's own synthesis).
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Generic, Literal, TypeVar

__all__ = [
    "FAST",
    "Check",
    "FastFactory",
    "ResourceKind",
    "TypedBindingError",
    "TypedFactory",
    "build_bodies",
    "check_mode",
    "import_bindings",
    "load_assembly",
    "to_terraform",
]

T = TypeVar("T")
Check = Literal["variant", "all"]
_lock = threading.Lock()
_deferred: dict[str, Any] = {}  # package -> its JSIIAssembly record, not yet loaded into Node


class TypedBindingError(TypeError):
    """A builder made a body the provider's typed bindings refuse, or typed and fast paths differ.

    A bug in the synthesizer, never in the catalog: the message names the resource and the field.
    """


@contextmanager
def _assembly_load_deferred(package: str) -> Iterator[None]:
    import jsii

    cls = jsii.JSIIAssembly
    original = cls.__dict__["load"]

    def load(klass: Any, *args: Any, **kwargs: Any) -> Any:
        record = klass(*args, **kwargs)
        if record.module != package:
            return original.__func__(klass, *args, **kwargs)
        _deferred[package] = record
        return record

    cls.load = classmethod(load)  # type: ignore[method-assign, assignment]  # patched while importing only
    try:
        yield
    finally:
        cls.load = original  # type: ignore[method-assign]  # the classmethod itself, as taken from __dict__


def import_bindings(package: str, *submodules: str) -> tuple[ModuleType, ...]:
    """``package``'s submodules (e.g. ``deployment_v1``), imported without loading its jsii
    assembly into Node. Struct classes work fully; constructs need ``load_assembly`` first."""
    with _lock:
        if f"{package}._jsii" not in sys.modules:
            from catalog.synth.node import prepare_jsii

            prepare_jsii()  # before jsii starts its Node process: the venv's Node 24
            import cdktn  # noqa: F401 -- its own assembly (and constructs') load for real, first

            with _assembly_load_deferred(package):
                importlib.import_module(f"{package}._jsii")
        return tuple(importlib.import_module(f"{package}.{name}") for name in submodules)


def load_assembly(package: str) -> None:
    """Load ``package``'s jsii assembly into Node if ``import_bindings`` deferred it."""
    with _lock:
        record = _deferred.pop(package, None)
        if record is not None:
            import jsii

            jsii.JSIIAssembly.load(record.name, record.version, record.module, record.filename)
        else:
            importlib.import_module(f"{package}._jsii")


class TypedFactory:
    """``k.Name(**fields)`` builds the provider's struct class ``Name`` (checked by jsii)."""

    def __init__(self, *modules: ModuleType) -> None:
        self._modules = modules

    def __getattr__(self, name: str) -> Callable[..., Any]:
        for module in self._modules:
            cls: Callable[..., Any] | None = getattr(module, name, None)
            if cls is not None:
                return cls
        raise TypedBindingError(f"no struct class {name} in {', '.join(m.__name__ for m in self._modules)}")


def _fields(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


class FastFactory:
    """``k.Name(**fields)`` is the dict of the fields that are not None: Terraform JSON as is."""

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        return _fields


FAST = FastFactory()


def to_terraform(value: Any) -> Any:
    """A struct tree as Terraform JSON: structs by their Python field names, lists, maps, scalars."""
    values = getattr(value, "_values", None)
    if isinstance(values, dict) and hasattr(type(value), "__jsii_type__"):
        return {key: to_terraform(item) for key, item in values.items()}
    if isinstance(value, Mapping):
        return {key: to_terraform(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_terraform(item) for item in value]
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise TypedBindingError(f"cannot express a {type(value).__name__} in Terraform JSON: {value!r}")


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}.{key}: only in the {'typed' if key in a else 'fast'} body"
            if a[key] != b[key]:
                return _first_difference(a[key], b[key], f"{path}.{key}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path or '.'}: typed {a!r} != fast {b!r}"


@dataclass(frozen=True)
class ResourceKind(Generic[T]):
    """One Terraform resource type: its builder and the struct modules that check it.

    ``build(k, item)`` returns the resource's attributes (a struct, usually the type's ``...Config``,
    without the meta-arguments ``lifecycle``/``depends_on``, which the target adds to the dict).
    ``variant(item)`` names the code path ``build`` takes for ``item``: the first item of every
    variant is checked with the typed structs.
    """

    resource_type: str
    modules: tuple[ModuleType, ...]
    build: Callable[[Any, T], Any]
    variant: Callable[[T], Hashable] = field(default=lambda item: None)

    def typed(self, item: T, key: str = "") -> dict[str, Any]:
        """The body built with the real struct classes, as Terraform JSON (raises on a bad field)."""
        try:
            struct = self.build(TypedFactory(*self.modules), item)
        except TypeError as e:
            raise TypedBindingError(f"{self.resource_type} {key}: the provider's bindings refuse the body: {e}") from e
        body: dict[str, Any] = to_terraform(struct)  # a struct's JSON is an object
        return body

    def check(self, item: T, body: Mapping[str, Any], key: str = "") -> None:
        typed = self.typed(item, key)
        if typed != body:
            raise TypedBindingError(
                f"{self.resource_type} {key}: the fast body differs from the typed one at {_first_difference(typed, body)}"
            )


def check_mode() -> Check:
    """``all`` when ``MODELCAT_SYNTH_CHECK=all`` (every body checked), else ``variant``."""
    return "all" if os.environ.get("MODELCAT_SYNTH_CHECK") == "all" else "variant"


def build_bodies(kind: ResourceKind[T], items: Iterable[tuple[str, T]], check: Check | None = None) -> dict[str, Any]:
    """``{key: body}`` of every item, built fast; the first item of each variant (or every item,
    ``check="all"``) also built typed and compared."""
    mode = check or check_mode()
    build, seen = kind.build, set()
    bodies = {}
    for key, item in items:
        body = build(FAST, item)
        if mode == "all":
            kind.check(item, body, key)
        else:
            variant = kind.variant(item)
            if variant not in seen:
                seen.add(variant)
                kind.check(item, body, key)
        bodies[key] = body
    return bodies
