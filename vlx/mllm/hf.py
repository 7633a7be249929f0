"""MLLMs from transformers, loaded by ``hf:<hub id or folder>``: LLaVA-1.5, LLaVA-NeXT, Qwen2-VL,
Qwen2.5-VL, Idefics3 and SmolVLM. Family-specific geometry lives in ``vlx.mllm.families``.

Inputs are built without torchvision: LLaVA / LLaVA-NeXT use their processors (PIL image
processors); Qwen2-VL / Qwen2.5-VL and SmolVLM processors load a torchvision video processor in
transformers 5, so vlx builds their inputs itself from the PIL image processor and the
tokenizer (same prompt expansion as the processors)."""

from __future__ import annotations

from typing import Any

import torch

from vlx.errors import UsageError
from vlx.mllm import families
from vlx.mllm.adapter import MLLM, MLLMInputs, MLLMOutput
from vlx.models.hub import CONFIG_FILES, TOKENIZER_FILES, WEIGHT_FILES, display_name, from_pretrained
from vlx.types import ImageInput

SUPPORTED = ("llava", "llava_next", "qwen2_vl", "qwen2_5_vl", "idefics3", "smolvlm")


class HFMLLM(MLLM):
    """A transformers image-text-to-text model behind the ``MLLM`` contract.

    Loaded with eager attention (attention maps need it) and frozen weights; gradient methods
    differentiate with respect to the pixel tensor, never the weights.
    """

    def __init__(self, model: Any, tokenizer: Any, processor: Any, name: str, family: str,
                 device: torch.device) -> None:
        model = model.eval().to(device)
        model.requires_grad_(False)
        decoder = model.get_decoder()
        text_cfg = getattr(model.config, "text_config", model.config)
        super().__init__(name, tokenizer, device, int(text_cfg.num_hidden_layers), model.get_output_embeddings(),
                         decoder.norm)
        self.model, self.processor, self.family_name = model, processor, family
        self.config = model.config
        self.dynamic_resolution = family in ("llava_next", "qwen2_vl", "qwen2_5_vl") or (
            family in ("idefics3", "smolvlm") and bool(getattr(processor.image_processor, "do_image_splitting", False)))
        self.image_token_id = int(getattr(self.config, "image_token_id", None)
                                  if getattr(self.config, "image_token_id", None) is not None
                                  else self.config.image_token_index)

    @property
    def family(self) -> str:  # type: ignore[override]
        return self.family_name

    def special_ids(self) -> set[int]:
        ids = super().special_ids() | {self.image_token_id}
        for key in ("vision_start_token_id", "vision_end_token_id", "video_token_id"):
            if getattr(self.config, key, None) is not None:
                ids.add(int(getattr(self.config, key)))
        return ids

    def prepare(self, image: ImageInput, question: str, prefill: str = "") -> MLLMInputs:
        """Prompt ids, pixel tensors and the image-token layout for ``question`` about ``image``;
        ``prefill`` starts the assistant's reply."""
        if not question.strip():
            raise UsageError("the question is empty; ask something about the image.")
        build = families.BUILDERS[self.family_name]
        inputs = build(self, image, question, prefill)
        return inputs

    def forward(self, inputs: MLLMInputs, hidden_states: bool = False, attentions: bool = False) -> MLLMOutput:
        ids = inputs.input_ids.to(self.device)
        out = self.model(input_ids=ids, **self._kwargs(ids, inputs.pixels), output_hidden_states=hidden_states,
                         output_attentions=attentions, use_cache=False)
        return MLLMOutput(out.logits, tuple(out.hidden_states) if hidden_states else None,
                          tuple(out.attentions) if attentions else None)

    @torch.no_grad()
    def generate(self, inputs: MLLMInputs, max_new_tokens: int = 16) -> list[int]:
        ids = inputs.input_ids.to(self.device)
        eos = _eos_ids(self.model, self.tokenizer)
        suppress = sorted(self.special_ids() - set(eos))
        out = self.model.generate(input_ids=ids, **self._kwargs(ids, inputs.pixels), max_new_tokens=max_new_tokens,
                                  min_new_tokens=1, do_sample=False, suppress_tokens=suppress or None,
                                  pad_token_id=eos[0] if eos else None)
        new = [int(t) for t in out[0, ids.shape[1]:]]
        for i, t in enumerate(new):
            if t in eos:
                return new[:i] or new[:1]
        return new

    def _kwargs(self, ids: torch.Tensor, pixels: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Attention mask, pixel tensors and (Qwen-VL) the multimodal token types for M-RoPE."""
        kw = {"attention_mask": torch.ones_like(ids), **_on(pixels, self.device)}
        if self.family_name in ("qwen2_vl", "qwen2_5_vl"):
            kw["mm_token_type_ids"] = (ids == self.image_token_id).long()
        return kw


def _on(pixels: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in pixels.items()}


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    e = getattr(model.generation_config, "eos_token_id", None)
    ids = [e] if isinstance(e, int) else list(e or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(int(tokenizer.eos_token_id))
    return [int(i) for i in ids]


def load_hf_mllm(ref: str, device: torch.device) -> HFMLLM:
    """Load an MLLM from a hub id or a folder saved with ``save_pretrained``."""
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    config = from_pretrained(AutoConfig.from_pretrained, ref, "MLLM", (CONFIG_FILES,))
    family = getattr(config, "model_type", "")
    if family not in SUPPORTED:
        raise UsageError(f"MLLM {ref!r} is a {family or 'unknown'} model; vlx explains {', '.join(SUPPORTED)}.")
    # transformers' default dtype is the config's (float16 / bfloat16 in most MLLM repositories):
    # float32 on the CPU, where half precision is slow or unsupported.
    dtype = torch.float32 if device.type == "cpu" else "auto"
    model = from_pretrained(AutoModelForImageTextToText.from_pretrained, ref, "MLLM", (CONFIG_FILES, WEIGHT_FILES),
                            attn_implementation="eager", dtype=dtype)
    tokenizer = from_pretrained(AutoTokenizer.from_pretrained, ref, "MLLM tokenizer", (TOKENIZER_FILES,))
    processor = families.load_processor(family, ref, tokenizer, config)
    return HFMLLM(model, tokenizer, processor, f"hf:{display_name(ref)}", family, device)
