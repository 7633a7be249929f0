"""The MLLM adapter contract: one object that prepares an image + question, generates the answer,
runs teacher-forced forward passes (with hidden states, attentions and gradients), and knows
which sequence positions are image tokens and where each lies on the image.

Implementations: ``vlx.mllm.hf.HFMLLM`` (LLaVA-1.5, LLaVA-NeXT, Qwen2-VL / Qwen2.5-VL,
Idefics3 / SmolVLM, loaded by ``hf:<hub id or folder>``) and ``vlx.mllm.demo.DemoMLLM`` (the
embedded demo); ``vlx.mllm.load.load_mllm`` builds one from a spec. Tests build their own
(``vlx.testing.tiny_mllm.PlantedMLLM``, hand-set weights) and pass the object.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from vlx.errors import UsageError
from vlx.mllm.layout import ImageLayout
from vlx.types import ImageInput


@dataclass(frozen=True)
class MLLMInputs:
    """Model inputs for one image + question (batch 1), or a batch of perturbed copies.

    Attributes:
        input_ids: long ``(B, T)``: prompt (and, after ``with_answer``, answer) token ids.
        pixels: the image tensors the model takes (e.g. ``pixel_values``, ``image_grid_thw``),
            every one batched along dim 0 (so copies concatenate).
        pixel_key: the entry of ``pixels`` that gradient methods differentiate.
        channel_dim: the dim of ``pixels[pixel_key]`` summed to get per-pixel relevance.
        image_positions: long ``(N,)``: sequence positions of the image tokens (same for all
            rows of the batch).
        layout: maps ``N`` per-token values onto the image.
        pixel_layout: maps the per-pixel relevance (``pixels[pixel_key]`` summed over
            ``channel_dim`` and flattened, batch 1) onto the image.
        prompt_len: number of prompt tokens; answer tokens start at this position.
        image: the image these inputs were made from.
    """

    input_ids: torch.Tensor
    pixels: dict[str, torch.Tensor]
    pixel_key: str
    channel_dim: int
    image_positions: torch.Tensor
    layout: ImageLayout
    pixel_layout: ImageLayout
    prompt_len: int
    image: ImageInput

    @property
    def batch_size(self) -> int:
        return int(self.input_ids.shape[0])

    def with_answer(self, answer_ids: list[int] | torch.Tensor) -> "MLLMInputs":
        """These inputs with ``answer_ids`` appended after the prompt (teacher forcing)."""
        a = torch.as_tensor(answer_ids, dtype=torch.long, device=self.input_ids.device).view(1, -1)
        ids = torch.cat([self.input_ids[:, :self.prompt_len], a.expand(self.batch_size, -1)], 1)
        return replace(self, input_ids=ids)

    def with_pixels(self, pixels: dict[str, torch.Tensor]) -> "MLLMInputs":
        return replace(self, pixels=pixels)


def stack_inputs(items: list[MLLMInputs]) -> MLLMInputs:
    """Batch copies of the same prompt over different images of the same size (their token
    counts must match): ids stacked, every pixel tensor concatenated along dim 0."""
    first = items[0]
    if any(i.input_ids.shape != first.input_ids.shape for i in items):
        raise ValueError("cannot batch inputs with different token counts")
    ids = torch.cat([i.input_ids for i in items], 0)
    pixels = {k: torch.cat([i.pixels[k] for i in items], 0) for k in first.pixels}
    return replace(first, input_ids=ids, pixels=pixels)


@dataclass
class MLLMOutput:
    """A forward pass over ``(B, T)`` tokens.

    ``logits``: float ``(B, T, V)`` (position ``p`` predicts token ``p + 1``);
    ``hidden_states``: ``L + 1`` tensors ``(B, T, D)``: index 0 the input embeddings, index
    ``l`` the output of decoder layer ``l``; the last one is *after* the final norm (as in
    transformers), so ``lm_head(hidden_states[-1]) == logits``; ``attentions``: ``L`` tensors
    ``(B, heads, T, T)`` (softmax weights, rows = queries), or ``None`` when not asked.
    """

    logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class MLLM:
    """Base of the MLLM adapters. Subclasses implement ``prepare``, ``forward`` and ``generate``.

    Attributes:
        name: the spec it was loaded from (``hf:...``, ``demo``).
        family: ``llava``, ``llava_next``, ``qwen2_vl``, ``qwen2_5_vl``, ``idefics3``, ``demo``...
        tokenizer: a transformers tokenizer (``decode``, ``convert_ids_to_tokens``).
        device: where the model runs.
        num_layers: decoder layers ``L``.
        dynamic_resolution: the model's token count follows the image size (MSEA then feeds
            rescaled images; fixed-resolution models get shrunk views padded to their canvas).
        lm_head, final_norm: the modules of the logit lens: ``logits = lm_head(final_norm(h))``.
    """

    family: ClassVar[str] = ""
    dynamic_resolution: bool = False

    def __init__(self, name: str, tokenizer: Any, device: torch.device, num_layers: int,
                 lm_head: nn.Module, final_norm: nn.Module) -> None:
        self.name, self.tokenizer, self.device = name, tokenizer, device
        self.num_layers, self.lm_head, self.final_norm = num_layers, lm_head, final_norm

    # -- to implement ---------------------------------------------------------------------------
    def prepare(self, image: ImageInput, question: str, prefill: str = "") -> MLLMInputs:
        """The prompt for ``question`` about ``image`` (batch 1), ready for ``generate``;
        ``prefill`` starts the assistant's reply."""
        raise NotImplementedError

    def forward(self, inputs: MLLMInputs, hidden_states: bool = False, attentions: bool = False) -> MLLMOutput:
        """One teacher-forced pass over ``inputs.input_ids`` (no ``no_grad``: callers decide)."""
        raise NotImplementedError

    def generate(self, inputs: MLLMInputs, max_new_tokens: int = 16) -> list[int]:
        """Greedy answer token ids (without the prompt, stopping at end of turn)."""
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------------
    @property
    def default_layer(self) -> int:
        """The hidden-state index LLaVA-CAM uses by default: the output of the middle decoder
        layer (``L // 2``; 0, the input embeddings, for a one-layer model). The last index is
        useless for CAM: image positions there no longer reach the answer's logits."""
        return self.num_layers // 2

    def special_ids(self) -> set[int]:
        """Token ids that are not words (specials, image tokens); skipped as ARC/TAM context."""
        return {int(i) for i in (getattr(self.tokenizer, "all_special_ids", None) or [])}

    def decode_tokens(self, ids: list[int]) -> list[str]:
        """Each id's text as it would print (leading spaces kept)."""
        return [self.tokenizer.decode([int(i)]) for i in ids]

    def lens_logits(self, hidden: torch.Tensor, ids: torch.Tensor, normed: bool = True) -> torch.Tensor:
        """Logit lens for selected vocabulary ids only: ``hidden`` ``(..., D)`` → ``(..., K)``
        logits of ``ids`` ``(K,)``; ``normed``: ``hidden`` is already after the final norm."""
        h = hidden if normed else self.final_norm(hidden)
        w = self.lm_head.weight[ids]
        out = h.to(w.dtype) @ w.T
        bias = getattr(self.lm_head, "bias", None)
        return out + bias[ids] if bias is not None else out

    def answer_probability(self, inputs: MLLMInputs, token_index: int, token_id: int) -> torch.Tensor:
        """Teacher-forced probability of answer token ``token_index`` (``== token_id``) for each
        row of the batch: float ``(B,)`` in ``[0, 1]``. ``inputs`` must carry the answer."""
        out = self.forward(inputs)
        return out.logits[:, inputs.prompt_len + token_index - 1].float().softmax(-1)[:, token_id]

    def view_for_scale(self, image: ImageInput, scale: float) -> tuple[ImageInput, tuple[int, int, int, int]]:
        """A rescaled view of ``image`` for MSEA and the box ``(x0, y0, x1, y1)`` (view pixels)
        where the original image lies in it. Dynamic-resolution models get the image resized by
        ``scale``; fixed-resolution ones get it shrunk by ``scale`` (``<= 1``) and centred on a
        canvas of the original size filled with its mean colour."""
        from PIL import Image

        h, w = image.size_hw
        nh, nw = max(8, round(h * scale)), max(8, round(w * scale))
        small = np.asarray(Image.fromarray(image.pixels).resize((nw, nh), Image.BILINEAR))
        if self.dynamic_resolution:
            return ImageInput(np.ascontiguousarray(small), image.path, image.id), (0, 0, nw, nh)
        if scale > 1:
            raise UsageError(f"scale {scale} > 1 needs a dynamic-resolution model; {self.name} has a fixed one.")
        canvas = np.empty_like(image.pixels)
        canvas[:] = image.pixels.reshape(-1, 3).mean(0).round().astype(np.uint8)
        y0, x0 = (h - nh) // 2, (w - nw) // 2
        canvas[y0:y0 + nh, x0:x0 + nw] = small
        return ImageInput(canvas, image.path, image.id), (x0, y0, x0 + nw, y0 + nh)
