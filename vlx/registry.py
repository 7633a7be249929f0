"""Every registry of vlx in one module: attribution methods, MLLM methods, few-shot explainers,
metrics, segmenters, describers and verbalizers.

A component is a class (or, for few-shot explainers, a function) plus one decorator line::

    @METHODS.register                  # the key is the class's own ``name``
    class GradCAM(CAMBase):
        name = "gradcam"

    @FEWSHOT_EXPLAINERS.register("saliency")   # a function has no ``name``: the key is the argument

The key is written once: ``register`` reads ``cls.name``, or the decorator's argument when the
object has no ``name`` of its own, never both. The modules that define a family's components are
listed in ``PROVIDERS`` and imported on the first ``get`` / ``names`` / ``items`` / ``in``, so
no caller has to import a module for its side effect. ``create(name, **options)`` checks the
options against the constructor's signature (an unknown one is a one-line ``UsageError`` with a
did-you-mean and the valid options). The CLI's choices and ``vlx methods`` read these tables.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from typing import Any, Callable, Generic, Iterable, TypeVar

from vlx.errors import UsageError

T = TypeVar("T")

# family -> modules whose import registers that family's built-in components
PROVIDERS: dict[str, tuple[str, ...]] = {
    "method": ("vlx.attribute.cam", "vlx.attribute.fused", "vlx.attribute.gradient", "vlx.attribute.perturb", "vlx.attribute.xrai"),
    "mllm method": ("vlx.mllm.methods",),
    "few-shot explainer": ("vlx.fewshot.explain", "vlx.fewshot.baselines"),
    "metric": ("vlx.evaluate.deletion", "vlx.evaluate.pointing", "vlx.evaluate.road", "vlx.evaluate.sanity",
               "vlx.evaluate.complexity"),
    "segmenter": ("vlx.regions.superpixels", "vlx.regions.sam"),
    "describer": ("vlx.describe.offline", "vlx.describe.clip", "vlx.describe.vlm"),
    "verbalizer": ("vlx.verbalize.template", "vlx.verbalize.llm"),
}


class Registry(Generic[T]):
    """A named table of components of one family (e.g. attribution methods), filled on first use
    by importing the family's provider modules (``PROVIDERS[kind]``)."""

    def __init__(self, kind: str, title: str | None = None) -> None:
        self.kind = kind
        self.title = title or f"{kind}s"
        self._items: dict[str, T] = {}
        self._loaded = False

    # -- registration ------------------------------------------------------------------------------
    def register(self, obj: Any = None) -> Any:
        """``@R.register`` above a class with a ``name`` attribute, or ``@R.register("key")`` above
        an object without one (a function). Registering a key twice raises ``ValueError``."""
        if isinstance(obj, str):
            key = obj

            def deco(target: T) -> T:
                own = getattr(target, "name", None)
                if isinstance(target, type) and isinstance(own, str) and own:
                    raise ValueError(f"{self.kind} {key!r}: {target.__name__} already has name {own!r}; "
                                     f"write the key once (use @{self.kind.upper()}.register without an argument)")
                self._add(key, target)
                return target

            return deco
        if obj is None or not isinstance(obj, type):
            raise TypeError("register: use @R.register above a class with a `name`, or @R.register('key')")
        key = getattr(obj, "name", None)
        if not isinstance(key, str) or not key:
            raise ValueError(f"{obj.__name__} has no `name`; set `name = \"...\"` on the class")
        self._add(key, obj)
        return obj

    def _add(self, key: str, obj: T) -> None:
        if key in self._items:
            raise ValueError(f"{self.kind} {key!r} is registered twice")
        self._items[key] = obj

    # -- lookup --------------------------------------------------------------------------------------
    def load(self) -> None:
        """Import the provider modules of this family (once)."""
        if self._loaded:
            return
        self._loaded = True                  # set first: a provider may look itself up while importing
        try:
            for module in PROVIDERS.get(self.kind, ()):
                importlib.import_module(module)
        except BaseException:
            self._loaded = False             # the import error propagates; a later call retries
            raise

    def names(self) -> list[str]:
        self.load()
        return sorted(self._items)

    def get(self, name: str) -> T:
        """Return the component called ``name``; an unknown name raises a one-line UsageError."""
        self.load()
        try:
            return self._items[name]
        except KeyError:
            raise UsageError(f"unknown {self.kind} {name!r}.{_did_you_mean(name, self._items)} "
                             f"Choose one of: {', '.join(self.names())}.") from None

    def create(self, name: str, *args: Any, **options: Any) -> Any:
        """``get(name)(*args, **options)`` after checking ``options`` against its signature."""
        obj = self.get(name)
        check_options(obj, options, f"{self.kind} {name!r}")
        return obj(*args, **options)

    def items(self) -> list[tuple[str, T]]:
        self.load()
        return sorted(self._items.items())

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._items


def option_names(obj: Any) -> list[str] | None:
    """The keyword options ``obj`` (a class or a function) accepts: the named parameters of every
    ``__init__`` along a class's MRO (of the function itself otherwise). ``None`` when a
    function takes ``**kwargs`` and nothing narrows it (then anything is accepted)."""
    names: list[str] = []
    if isinstance(obj, type):
        sigs = [inspect.signature(c.__dict__["__init__"]) for c in obj.__mro__ if "__init__" in c.__dict__
                and c is not object]
        params = [p for s in sigs for p in list(s.parameters.values())[1:]]
    else:
        params = list(inspect.signature(obj).parameters.values())
        if any(p.kind is p.VAR_KEYWORD for p in params) and \
                not any(p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params):
            return None
    for p in params:
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in names:
            names.append(p.name)
    return names


def check_options(obj: Any, options: dict[str, Any], what: str) -> None:
    """Raise a one-line UsageError naming the valid options when ``options`` holds a key that
    ``obj``'s signature does not (see ``option_names``)."""
    valid = option_names(obj)
    if valid is None:
        return
    for key in options:
        if key not in valid:
            listed = ", ".join(valid) if valid else "none"
            raise UsageError(f"{what} has no option {key!r}.{_did_you_mean(key, valid)} Its options: {listed}.")


def _did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=3)
    return f" Did you mean {', '.join(close)}?" if close else ""


METHODS: Registry = Registry("method", "attribution methods")
MLLM_METHODS: Registry = Registry("mllm method", "MLLM methods (vlx ask)")
FEWSHOT_EXPLAINERS: Registry = Registry("few-shot explainer", "few-shot explainers (vlx fewshot)")
METRICS: Registry = Registry("metric", "metrics (vlx eval)")
SEGMENTERS: Registry = Registry("segmenter", "segmenters")
DESCRIBERS: Registry = Registry("describer", "describers")
VERBALIZERS: Registry = Registry("verbalizer", "verbalizers")

FAMILIES: tuple[Registry, ...] = (METHODS, MLLM_METHODS, FEWSHOT_EXPLAINERS, METRICS, SEGMENTERS, DESCRIBERS,
                                  VERBALIZERS)


def all_families() -> dict[str, list[str]]:
    """``{family title: sorted names}`` for every registry (``vlx methods``)."""
    return {r.title: r.names() for r in FAMILIES}


Decorator = Callable[[T], T]
