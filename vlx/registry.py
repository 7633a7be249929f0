"""Registries: ``register`` / ``names`` / ``get`` for methods, segmenters, describers,
verbalizers and metrics. A new component is a class plus one ``@REGISTRY.register`` line;
the CLI's choices and ``vlx methods`` read the registries, so they never go stale."""

from __future__ import annotations

import difflib
from typing import Callable, Generic, TypeVar

from vlx.errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named table of components of one kind (e.g. attribution methods)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@METHODS.register("gradcam")`` above a class."""

        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def names(self) -> list[str]:
        return sorted(self._items)

    def get(self, name: str) -> T:
        """Return the component called ``name``; an unknown name raises a one-line UsageError."""
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._items, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise UsageError(
                f"unknown {self.kind} {name!r}.{hint} Choose one of: {', '.join(self.names())}."
            ) from None

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._items.items())

    def __contains__(self, name: object) -> bool:
        return name in self._items


METHODS: Registry = Registry("method")
SEGMENTERS: Registry = Registry("segmenter")
DESCRIBERS: Registry = Registry("describer")
VERBALIZERS: Registry = Registry("verbalizer")
METRICS: Registry = Registry("metric")
