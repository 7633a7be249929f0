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
        self._question: torch.Tensor | None = None
        self._prefill_n: int | None = None

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

    def question_positions(self) -> torch.Tensor:
        """Sequence positions of the question's own tokens in the prompt: long ``(Q,)``.

        Found without knowing the chat template: the prompt is prepared again for two probe
        questions; the tokens it shares with both at its start and at its end are template
        (system prompt, role names, image tokens, the generation prompt), the rest is the
        question. Image and special tokens are never question tokens. Cached."""
        if self._question is None:
            ids = self.prompt.input_ids[0, :self.prompt.prompt_len].tolist()
            probes = [self.model.prepare(self.inputs.image, q, self.prefill).input_ids[0].tolist()
                      for q in _PROBES]
            start = min(_common_prefix(ids, p) for p in probes)
            end = len(ids) - min(_common_suffix(ids[start:], p[start:]) for p in probes)
            keep = torch.zeros(len(ids), dtype=torch.bool)
            keep[start:end] = True
            keep[self.image_positions[self.image_positions < len(ids)]] = False
            specials = torch.tensor(sorted(self.model.special_ids()), dtype=torch.long)
            keep &= ~torch.isin(torch.tensor(ids, dtype=torch.long), specials)
            self._question = torch.nonzero(keep)[:, 0]
        return self._question

    def prefill_count(self) -> int:
        """How many prompt tokens at its end are the ``prefill`` (the reply's given start). Cached."""
        if self._prefill_n is None:
            bare = self.prompt if not self.prefill else self.model.prepare(self.inputs.image, self.question)
            self._prefill_n = max(0, self.inputs.prompt_len - bare.prompt_len)
        return self._prefill_n

    def text_context(self, t: int) -> "TextContext":
        """The text context of answer token ``t``, as in TAM's reference code: the question's
        tokens, then the reply before ``t`` (the ``prefill`` and *every* earlier answer token,
        ``a_{t-1}`` included); no chat-template words, image or special tokens.

        ``score_positions`` are where TAM and ARC read each context token's scores: a question
        token at its own position; a reply token at the position that predicted it (the reference
        indexes answer tokens by their generation step)."""
        end = self.position(t) + 1                      # the predicting position of t, exclusive end
        q = self.question_positions()
        start = self.inputs.prompt_len - self.prefill_count()
        reply = torch.arange(start, end, dtype=torch.long)
        positions = torch.cat([q[q < start], reply])
        ids = self.inputs.input_ids[0, positions]
        specials = torch.tensor(sorted(self.model.special_ids()), dtype=torch.long)
        keep = ~torch.isin(ids, specials)
        score = torch.cat([q[q < start], reply - 1])
        return TextContext(positions[keep], ids[keep], score[keep])

    def context_positions(self, t: int) -> torch.Tensor:
        """Sequence positions of ``text_context(t)``'s tokens, long ``(J,)``."""
        return self.text_context(t).positions


@dataclass(frozen=True)
class TextContext:
    """The text context of one answer token (see ``AnswerContext.text_context``).

    Attributes:
        positions: long ``(J,)``: where each context token sits in the sequence.
        ids: long ``(J,)``: their vocabulary ids.
        score_positions: long ``(J,)``: the position whose hidden state / logits stand for each
            token (its own for question tokens, the one that predicted it for reply tokens).
    """

    positions: torch.Tensor
    ids: torch.Tensor
    score_positions: torch.Tensor


_PROBES = ("\u00a7", "\u00b6 \u00b6")


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _common_suffix(a: list[int], b: list[int]) -> int:
    return _common_prefix(a[::-1], b[::-1])
