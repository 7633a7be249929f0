"""One explain configuration: every option of ``Explainer``, as a frozen dataclass shared by
``vlx explain``, ``vlx batch`` (and each of its worker processes, which receive it as JSON) and
the Python API (``Explainer(config)``).

This module imports neither torch nor any model code, so the command line can build and check a
configuration before anything heavy is loaded.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from vlx.errors import UsageError

DEFAULT_MODEL = "effnet-lite0"
STYLES = ("short", "detailed")
REFINEMENTS = ("none", "superpixels", "felzenszwalb", "sam")


@dataclass(frozen=True)
class ExplainConfig:
    """What an ``Explainer`` loads and how it explains (see ``vlx explain --help``).

    Attributes:
        model: a model spec (``effnet-lite0``, ``hf:<id or folder>``, ``timm:<name>``, ...).
        method: a registered attribution method (``vlx methods``), or ``auto`` for the model's
            default (EfficientNet-Lite0: ``fusedcam``, Grad-CAM × LayerCAM; other models:
            ``gradcam``); ``method_options``: its constructor's keyword options (checked against
            its signature once the method is known).
        layer: ``None`` (auto), a dotted path or a module name; comma-separated for several.
        labels, prompt_template: label set (``"a,b,c"``, ``"@file.txt"`` or a sequence) and prompt
            of a zero-shot model (``clip:hf:...``, ``open_clip:...``).
        device: ``auto|cpu|cuda|cuda:N|mps``.
        style: ``short`` or ``detailed``; verbalizer: a registered verbalizer (``template``,
            ``llm``); llm: the LM of the ``llm`` verbalizer (``smollm2`` or ``hf:<id or folder>``).
        coverage: share of the positive attribution the regions must hold, in ``(0, 1]``.
        segmenter: a registered segmenter or a SAM spec (``hf:...``, ``sam:vit_b=...``);
            ``segmenter_options``: its keyword options.
        refine: ``none``, ``superpixels``, ``felzenszwalb`` or ``sam``.
        shapley: also compute Shapley values of the regions.
        describer: a describer spec (``offline``, ``clip:hf:...``, ``vlm:hf:...``) or ``None``.
        top_k: how many predictions to report.
        metrics: measure each map (deletion and insertion next to random maps, one sentence in
            the text; the model + method sanity check, cached).
    """

    model: str = DEFAULT_MODEL
    method: str = "auto"
    method_options: Mapping[str, Any] = field(default_factory=dict)
    layer: str | None = None
    labels: str | tuple[str, ...] | None = None
    prompt_template: str | None = None
    device: str = "auto"
    style: str = "short"
    verbalizer: str = "template"
    llm: str = "smollm2"
    coverage: float = 0.5
    segmenter: str = "superpixels"
    segmenter_options: Mapping[str, Any] = field(default_factory=dict)
    refine: str = "none"
    shapley: bool = False
    describer: str | None = "offline"
    top_k: int = 5
    metrics: bool = True

    def __post_init__(self) -> None:
        if self.layer == "auto":
            object.__setattr__(self, "layer", None)
        if isinstance(self.describer, str) and self.describer.strip().lower() == "none":
            object.__setattr__(self, "describer", None)
        if isinstance(self.labels, (list, tuple)):
            object.__setattr__(self, "labels", tuple(str(x) for x in self.labels))
        object.__setattr__(self, "method_options", dict(self.method_options))
        object.__setattr__(self, "segmenter_options", dict(self.segmenter_options))

    def replace(self, **changes: Any) -> "ExplainConfig":
        """A copy with ``changes``; an unknown name is a one-line UsageError."""
        check_fields(changes)
        return dataclasses.replace(self, **changes)

    def check(self) -> "ExplainConfig":
        """Check names and options against the registries without loading any model; returns
        ``self``. Raises a one-line ``UsageError`` naming the valid choices."""
        from vlx.registry import METHODS, VERBALIZERS, check_options

        if self.method != "auto":                  # resolved by the Explainer once the model is loaded
            check_options(METHODS.get(self.method), self.method_options, f"method {self.method!r}")
        VERBALIZERS.get(self.verbalizer)
        _choose("style", self.style, STYLES)
        _choose("refinement", self.refine, REFINEMENTS)
        if not 0 < self.coverage <= 1:
            raise UsageError(f"coverage {self.coverage} is outside (0, 1]; e.g. 0.5.")
        if self.top_k < 1:
            raise UsageError(f"top_k {self.top_k} must be at least 1.")
        return self

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict; ``ExplainConfig.from_json`` reads it back."""
        d = dataclasses.asdict(self)
        if isinstance(self.labels, tuple):
            d["labels"] = list(self.labels)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ExplainConfig":
        check_fields(d)
        return cls(**dict(d))


def check_fields(d: Mapping[str, Any]) -> None:
    """Raise a one-line UsageError for a key of ``d`` that is not an ``ExplainConfig`` field."""
    import difflib

    names = [f.name for f in dataclasses.fields(ExplainConfig)]
    for key in d:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise UsageError(f"unknown explain option {key!r}.{hint} Options: {', '.join(names)}.")


def parse_options(pairs: Sequence[str] | None, what: str = "--method-option") -> dict[str, Any]:
    """``["n_steps=10", "baseline=blur"]`` → ``{"n_steps": 10, "baseline": "blur"}``. Values are
    read as Python literals (numbers, ``True``, tuples, quoted strings), else kept as strings."""
    out: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{what} takes KEY=VALUE, e.g. {what} n_steps=32; got {pair!r}.")
        try:
            value = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip()
        out[key.strip()] = value
    return out


def config_json(config: ExplainConfig) -> str:
    return json.dumps(config.to_json(), sort_keys=True)


def _choose(what: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise UsageError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}.")
