"""One answer, explained token by token: the teacher-forced inputs and the cached forward pass
that the methods share (as SAM caches ``set_image``), plus the answer-map result type."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from vlx.mllm.adapter import MLLM, MLLMInputs, MLLMOutput
from vlx.types import ImageInput


@dataclass(frozen=True)
class AnswerMap:
    """A map for one answer token (or a span of them).

    Attributes:
        tokens: indices of the answer tokens explained (one, or a span).
        text: their decoded text.
        method: the registered method name (``tam``, ``llavacam``, ...; ``msea(...)`` when wrapped).
        values: float32 ``(H, W)`` at the image's resolution, not normalised (``>= 0`` unless
            ``signed``).
        raw: float32 values at the method's own resolution: one per image token (token methods),
            per pixel cell (gradient), or per region (perturbation).
        signed: negative values carry meaning.
        seconds: wall time of the method for this call (shared passes split evenly).
        details: method extras (layer, interference weights, scale costs, ...).
    """

    tokens: tuple[int, ...]
    text: str
    method: str
    values: np.ndarray
    raw: np.ndarray
    signed: bool = False
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def normalized(self) -> np.ndarray:
        """``values`` scaled to ``[0, 1]`` (positive part, or ``|values|`` when signed)."""
        v = np.abs(self.values) if self.signed else np.clip(self.values, 0, None)
        m = float(v.max())
        return (v / m).astype(np.float32) if m > 0 else np.zeros_like(v, dtype=np.float32)


class AnswerContext:
    """The prompt + generated answer of one image + question, with a cached no-grad pass.

    ``position(t)`` is the sequence position whose logits predict answer token ``t``.
    """

    def __init__(self, model: MLLM, image: ImageInput, question: str, answer_ids: list[int] | None = None,
                 prefill: str = "", max_new_tokens: int = 16) -> None:
        self.model, self.question, self.prefill = model, question, prefill
        self.prompt = model.prepare(image, question, prefill)
        if answer_ids is None:
            answer_ids = model.generate(self.prompt, max_new_tokens)
        if not answer_ids:
            raise ValueError("the answer is empty: nothing to explain")
        self.answer_ids = [int(i) for i in answer_ids]
        self.inputs = self.prompt.with_answer(self.answer_ids)
        self._out: MLLMOutput | None = None

    def reprepare(self, image: ImageInput) -> MLLMInputs:
        """Inputs with the same prompt and answer over another image (same size for batching)."""
        return self.model.prepare(image, self.question, self.prefill).with_answer(self.answer_ids)

    @property
    def image_positions(self) -> torch.Tensor:
        return self.inputs.image_positions

    def position(self, t: int) -> int:
        if not 0 <= t < len(self.answer_ids):
            raise IndexError(f"answer token {t} out of range 0..{len(self.answer_ids) - 1}")
        return self.inputs.prompt_len + t - 1

    def token_text(self, tokens: tuple[int, ...]) -> str:
        return "".join(self.model.decode_tokens([self.answer_ids[t] for t in tokens]))

    def output(self) -> MLLMOutput:
        """The cached pass with hidden states and attentions (computed once, without gradients)."""
        if self._out is None:
            with torch.no_grad():
                self._out = self.model.forward(self.inputs, hidden_states=True, attentions=True)
        return self._out

    def context_positions(self, t: int) -> torch.Tensor:
        """Sequence positions of the text context of answer token ``t``: prompt words and earlier
        answer tokens before its predicting position, without image and special tokens. Long
        ``(J,)``."""
        end = self.position(t)
        ids = self.inputs.input_ids[0, :end]
        keep = torch.ones(end, dtype=torch.bool)
        keep[self.image_positions[self.image_positions < end]] = False
        specials = torch.tensor(sorted(self.model.special_ids()), dtype=torch.long)
        keep &= ~torch.isin(ids, specials)
        return torch.nonzero(keep)[:, 0]
