"""Load an MLLM from a spec (``demo`` or ``hf:<hub id or folder>``). The factory lives apart from
the adapter contract (``vlx.mllm.adapter``) so that the implementations, which import the
contract, are never imported by it."""

from __future__ import annotations

import torch

from vlx.errors import UsageError
from vlx.mllm.adapter import MLLM

SPECS = {"demo": "embedded EfficientNet-Lite0 + SmolLM2 composition (a demo, not proof of faithfulness)",
         "hf:<hub id or folder>": "LLaVA-1.5, LLaVA-NeXT, Qwen2-VL, Qwen2.5-VL, Idefics3, SmolVLM"}


def load_mllm(spec: str, device: str | torch.device = "auto") -> MLLM:
    """Load an MLLM: ``demo`` (embedded EfficientNet-Lite0 + SmolLM2 composition, see
    ``vlx.mllm.demo``) or ``hf:<hub id or folder>``. Other adapters (e.g. test models) are
    objects: pass them to ``vlx.mllm.ask.ask`` directly."""
    from vlx.device import resolve_device

    dev = device if isinstance(device, torch.device) else resolve_device(device)
    spec = spec.strip()
    if spec == "demo":
        from vlx.mllm.demo import load_demo

        return load_demo(dev)
    prefix, _, ref = spec.partition(":")
    if prefix != "hf" or not ref:
        raise UsageError(f"unknown MLLM {spec!r}; use demo (embedded) or hf:<hub id or folder>.")
    from vlx.mllm.hf import load_hf_mllm

    return load_hf_mllm(ref, dev)
