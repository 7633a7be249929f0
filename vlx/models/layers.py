"""Layers: resolve dotted paths, pick a sensible default layer, and turn token sequences into
spatial grids, so that no user writes a reshape transform for a ViT."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from vlx.errors import UsageError

MAX_PREFIX_TOKENS = 16


def resolve_layer(model: nn.Module, spec: str) -> tuple[str, nn.Module]:
    """Resolve ``spec`` to ``(dotted name, module)``.

    ``spec`` is a dotted path where integers index sequences and may be negative
    (``blocks.-1.norm1``, ``vit.encoder.layer.-2``), or the last part of a module name when it
    is unique (``_conv_head``).
    """
    module: Any = model
    parts: list[str] = []
    try:
        for part in spec.split("."):
            if part.lstrip("-").isdigit() and isinstance(module, (nn.ModuleList, nn.Sequential)):
                i = int(part)
                i = i + len(module) if i < 0 else i
                module = module[i]
                parts.append(str(i))
            else:
                module = getattr(module, part)
                parts.append(part)
        if not isinstance(module, nn.Module):
            raise AttributeError(spec)
        return ".".join(parts), module
    except (AttributeError, IndexError):
        pass
    hits = [(n, m) for n, m in model.named_modules() if n == spec or n.endswith("." + spec)]
    if len(hits) == 1:
        return hits[0]
    names = [n for n, _ in model.named_modules() if n]
    hint = "ambiguous" if hits else "not found"
    raise UsageError(
        f"layer {spec!r} {hint} in {type(model).__name__}; pass a dotted path such as "
        f"{names[-1] if names else 'features.-1'} (see `vlx models --layers`) or 'auto'."
    )


def first_tensor(out: Any) -> torch.Tensor | None:
    """The first tensor in a module output (tensor, tuple/list, dict or ModelOutput)."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        for o in out:
            t = first_tensor(o)
            if t is not None:
                return t
    return None


def find_default_layer(model: nn.Module, example: torch.Tensor) -> str:
    """Pick the layer CAM methods explain when none is given.

    Transformers (a list of blocks producing ``(B, T, D)`` tokens): the penultimate block's
    output, i.e. the input of the last block (the last block's patch tokens do not reach a
    CLS-token head). CNNs: the last module, in execution order, with a spatial ``(B, C, H, W)``
    output (``H, W > 1``) that runs once per forward pass.
    """
    records: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    handles = []
    for name, mod in model.named_modules():
        if not name:
            continue

        def hook(m, inp, out, name=name):
            t = first_tensor(out)
            rec = records.setdefault(name, {"calls": 0, "shape": None})
            rec["calls"] += 1
            rec["shape"] = tuple(t.shape) if t is not None else None
            order.append(name)

        handles.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in handles:
            h.remove()

    modules = dict(model.named_modules())
    best: tuple[int, str] | None = None
    for name, mod in modules.items():
        if isinstance(mod, nn.ModuleList) and len(mod) >= 2 and len({type(c) for c in mod}) == 1:
            shape = records.get(f"{name}.{len(mod) - 1}", {}).get("shape")
            if shape is not None and len(shape) == 3 and (best is None or len(mod) > best[0]):
                best = (len(mod), name)
    if best is not None:
        return f"{best[1]}.{best[0] - 2}"

    last = None
    for name in order:
        rec = records[name]
        s = rec["shape"]
        if rec["calls"] == 1 and s is not None and len(s) == 4 and s[2] > 1 and s[3] > 1:
            last = name
    if last is None:
        raise UsageError(
            f"could not find a spatial layer in {type(model).__name__}; pass one with --layer."
        )
    return last


def token_grid(num_tokens: int, input_hw: tuple[int, int]) -> tuple[int, int, int]:
    """Infer ``(prefix, gh, gw)`` for a token sequence: ``prefix`` leading tokens (CLS,
    distillation, registers) followed by a ``gh × gw`` patch grid whose aspect ratio matches the
    input's. Raises ValueError when no grid fits."""
    h, w = input_hw
    ratio = h / w
    for prefix in range(0, MAX_PREFIX_TOKENS + 1):
        n = num_tokens - prefix
        if n <= 0:
            break
        gw = max(1, round(math.sqrt(n / ratio)))
        for cand in (gw, gw - 1, gw + 1):
            if cand > 0 and n % cand == 0:
                gh = n // cand
                if abs(gh / cand - ratio) <= 0.1 * max(ratio, 1.0) and (prefix > 0 or _is_exact(gh, cand, h, w)):
                    return prefix, gh, cand
    raise ValueError(f"cannot infer a patch grid for {num_tokens} tokens and input {h}x{w}")


def _is_exact(gh: int, gw: int, h: int, w: int) -> bool:
    return h % gh == 0 and w % gw == 0


def to_spatial(act: torch.Tensor, input_hw: tuple[int, int]) -> torch.Tensor:
    """Activations as ``(B, C, H, W)``: 4-D tensors pass through; token tensors ``(B, T, D)``
    lose their prefix tokens and are reshaped to the inferred patch grid."""
    if act.dim() == 4:
        return act
    if act.dim() == 3:
        prefix, gh, gw = token_grid(act.shape[1], input_hw)
        return act[:, prefix:, :].transpose(1, 2).reshape(act.shape[0], act.shape[2], gh, gw)
    raise ValueError(f"cannot make a spatial map from activations of shape {tuple(act.shape)}")
