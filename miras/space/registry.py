"""Axis registries: a name -> implementation class + a typed parameter model.

Built-in options register with the decorators of :data:`REGISTRIES`; third-party packages
register through the ``miras.plugins`` entry-point group (see :func:`load_plugins`).
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import importlib.metadata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from .gates import GateSpec

AXES: tuple[str, ...] = ("memory", "bias", "retention", "algorithm")
BUILTIN = "built-in"
PLUGIN_GROUP = "miras.plugins"

_origin: contextvars.ContextVar[str] = contextvars.ContextVar("miras_origin", default=BUILTIN)

T = TypeVar("T", bound=type)


class Params(BaseModel):
    """Base class of every option's parameter model: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    """Parameter model of an option that takes no parameters."""


class RegistryError(Exception):
    """A registration problem (duplicate name, bad declaration) or an unknown option."""


@dataclass(frozen=True)
class Option:
    """One registered option of an axis."""

    axis: str
    name: str
    impl: type
    params: type[Params]
    description: str
    shorthand: str
    origin: str

    def build(self, params: dict[str, Any] | Params | None = None) -> Any:
        """Instantiate the implementation with validated parameters."""
        if not isinstance(params, Params):
            params = self.params.model_validate(params or {})
        return self.impl(params)


class Registry:
    """Name -> :class:`Option` for one axis."""

    def __init__(self, axis: str) -> None:
        self.axis = axis
        self._options: dict[str, Option] = {}
        self.base: type | None = None
        """The class every implementation on this axis subclasses (set by :meth:`bind`)."""

    def bind(self, base: type) -> None:
        """Require every implementation registered from now on to subclass ``base`` (the axis's class)."""
        self.base = base

    def register(
        self,
        name: str,
        *,
        params: type[Params] = NoParams,
        description: str,
        shorthand: str | None = None,
    ) -> Callable[[T], T]:
        """Class decorator that registers ``cls`` under ``name`` on this axis."""
        if not name.isidentifier() or name != name.lower():
            raise RegistryError(f"{self.axis} option name {name!r} must be a lower-case identifier")
        if not (isinstance(params, type) and issubclass(params, Params)):
            raise RegistryError(f"{self.axis} option {name!r}: params must subclass miras.space.Params")
        if not description or "\n" in description:
            raise RegistryError(f"{self.axis} option {name!r} needs a one-line description")

        def decorator(cls: T) -> T:
            origin = _origin.get()
            if self.base is not None and not (isinstance(cls, type) and issubclass(cls, self.base)):
                raise RegistryError(
                    f"{self.axis} option {name!r} ({origin}): {getattr(cls, '__qualname__', cls)!s} must subclass "
                    f"{self.base.__module__}.{self.base.__qualname__}"
                )
            undeclared = [gate for gate in getattr(cls, "gates", ()) if not isinstance(gate, GateSpec)]
            if undeclared:
                raise RegistryError(
                    f"{self.axis} option {name!r} ({origin}): gates must list miras.space.GateSpec entries "
                    f"(name, activation, start, acts_on), not {undeclared[0]!r}"
                )
            if name in self._options:
                first = self._options[name].origin
                raise RegistryError(
                    f"duplicate {self.axis} option {name!r}: registered by {first} and again by {origin}"
                )
            self._options[name] = Option(
                axis=self.axis,
                name=name,
                impl=cls,
                params=params,
                description=description,
                shorthand=shorthand or name,
                origin=origin,
            )
            return cls

        return decorator

    def unregister(self, name: str) -> None:
        """Remove an option (used by tests that register temporary options)."""
        self._options.pop(name, None)

    def get(self, name: str) -> Option:
        load_plugins()
        if name not in self._options:
            message = unknown_option_message(self.axis, name, self.names())
            if PLUGIN_FAILURES:
                message += "; plugins that failed to load (one may have provided it): " + "; ".join(
                    PLUGIN_FAILURES.values()
                )
            raise RegistryError(message)
        return self._options[name]

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._options)

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._options

    def __iter__(self) -> Iterator[Option]:
        load_plugins()
        return iter(sorted(self._options.values(), key=lambda o: o.name))


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or ``""`` (every 'unknown ...' message ends so)."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_option_message(axis: str, name: str, known: list[str]) -> str:
    """``unknown bias 'hubr'; registered: ... (did you mean 'huber'?)``."""
    return f"unknown {axis} option {name!r}; registered: {', '.join(known)}{suggest(name, known)}"


REGISTRIES: dict[str, Registry] = {axis: Registry(axis) for axis in AXES}

register_memory = REGISTRIES["memory"].register
register_bias = REGISTRIES["bias"].register
register_retention = REGISTRIES["retention"].register
register_algorithm = REGISTRIES["algorithm"].register


@contextlib.contextmanager
def registering_as(origin: str) -> Iterator[None]:
    """Attribute every registration made inside the block to ``origin``."""
    token = _origin.set(origin)
    try:
        yield
    finally:
        _origin.reset(token)


_plugins_loaded = False

PLUGIN_FAILURES: dict[str, str] = {}
"""``<distribution>:<entry point>`` -> why it failed to load (its registrations are withdrawn)."""


def load_plugins(*, force: bool = False) -> None:
    """Import every ``miras.plugins`` entry point once, each on its own.

    An entry point names a module (importing it runs its ``@register_*`` decorators) or a
    callable, which is called with no arguments. Registrations are attributed to the entry
    point's distribution name. A plugin that raises is recorded in :data:`PLUGIN_FAILURES`, by
    distribution and entry-point name, and whatever it registered is withdrawn; the others load.
    """
    global _plugins_loaded
    if _plugins_loaded and not force:
        return
    _plugins_loaded = True
    PLUGIN_FAILURES.clear()
    for entry_point in importlib.metadata.entry_points(group=PLUGIN_GROUP):
        dist = entry_point.dist.name if entry_point.dist is not None else entry_point.value
        before = {axis: set(registry._options) for axis, registry in REGISTRIES.items()}
        with registering_as(dist):
            try:
                loaded = entry_point.load()
                if callable(loaded) and not isinstance(loaded, type):
                    loaded()
            except Exception as error:  # a broken plugin says who it is, and takes no other down
                for axis, registry in REGISTRIES.items():
                    for name in set(registry._options) - before[axis]:
                        registry.unregister(name)
                key = f"{dist}:{entry_point.name}"
                PLUGIN_FAILURES[key] = (
                    f"plugin {dist!r} (entry point {entry_point.name!r} = {entry_point.value!r}) "
                    f"failed to load: {type(error).__name__}: {error}"
                )
