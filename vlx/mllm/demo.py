"""The embedded demo MLLM (``--model demo``): EfficientNet-Lite0 + SmolLM2-135M-Instruct, both real
weights installed as packages, composed into a small "vision-language model".

Recipe: EfficientNet-Lite0's last feature map is a 7 × 7 grid of patches; each patch is
classified by the ImageNet head and becomes the SmolLM2 input embedding of its top-1 class name
(the mean over the name's tokens; the shortest synonym when the first is long). The prompt is
SmolLM2's chat template with "Image:" + the 49 patch embeddings + the question, and the reply
is prefilled with "The image shows a"; decoding is greedy, and the answer ends at the end of
turn, at the end of its first sentence, or before it starts to repeat itself
(``vlx.mllm.stopping``). For gradients the hard top-1 choice passes a straight-through estimate
(the softmax mixture of class embeddings).

**A demo and integration target, not evidence of faithfulness.** The composition was never
trained as an MLLM; its token maps were found to follow token position more than content. Use
the planted-signal model (``vlx.testing.tiny_mllm``) to check that a method is faithful.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from vlx.mllm.adapter import MLLM, MLLMInputs, MLLMOutput
from vlx.mllm.layout import ImageLayout, single_grid
from vlx.types import ImageInput

GRID = 7
PREFILL = "The image shows a"
IMAGE_MARK = "<IMAGE>"


def short_name(label: str, max_chars: int = 14) -> str:
    """The first synonym of an ImageNet label, or its shortest one when the first is long."""
    names = [s.strip() for s in label.split(",") if s.strip()]
    return names[0] if len(names[0]) <= max_chars else min(names, key=len)


class DemoMLLM(MLLM):
    """EfficientNet-Lite0 patches as SmolLM2 word embeddings (see the module docstring)."""

    family = "demo"

    def __init__(self, device: torch.device) -> None:
        from vlx.models.effnet import load_effnet_lite0
        from vlx.models.llm import load_llm

        self.cnn = load_effnet_lite0(device)
        self.cnn.module.requires_grad_(False)
        gen = load_llm("smollm2", device)
        self.lm = gen.model
        self.lm.requires_grad_(False)
        self.lm.config._attn_implementation = "eager"
        tok = gen.tokenizer
        super().__init__("demo", tok, device, int(self.lm.config.num_hidden_layers), self.lm.lm_head,
                         self.lm.model.norm)
        emb = self.lm.get_input_embeddings().weight
        rows = []
        for label in self.cnn.labels:
            ids = tok(" " + short_name(label), add_special_tokens=False)["input_ids"]
            rows.append(emb[ids].mean(0))
        self.class_embeddings = torch.stack(rows).detach()  # (1000, D)
        self.placeholder = int(tok.pad_token_id if tok.pad_token_id is not None else 0)
        self.eos = [int(tok.convert_tokens_to_ids("<|im_end|>")), int(tok.eos_token_id)]

    def special_ids(self) -> set[int]:
        return super().special_ids() | {self.placeholder}

    def prepare(self, image: ImageInput, question: str, prefill: str = "") -> MLLMInputs:
        """The 49 image slots hold a placeholder id whose embeddings ``forward`` replaces with
        the patch-class embeddings; an empty ``prefill`` means the recipe's ``PREFILL``."""
        tok = self.tokenizer
        prefill = prefill or PREFILL
        msgs = [{"role": "user", "content": f"Image: {IMAGE_MARK} {question}"}]
        text = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        before, after = text.split(IMAGE_MARK)
        a = tok(before, add_special_tokens=False)["input_ids"]
        b = tok(after + prefill, add_special_tokens=False)["input_ids"]
        ids = a + [self.placeholder] * GRID * GRID + b
        h, w = image.size_hw
        x = self.cnn.to_input(image)
        layout = ImageLayout((h, w), (single_grid((h, w), (GRID, GRID)),), GRID * GRID)
        s = x.shape[-1]
        pl = ImageLayout((h, w), (single_grid((h, w), (s, s)),), s * s)
        return MLLMInputs(torch.tensor([ids], device=self.device), {"pixel_values": x}, "pixel_values", 1,
                          torch.arange(len(a), len(a) + GRID * GRID), layout, pl, len(ids), image)

    def patch_classes(self, x: torch.Tensor) -> torch.Tensor:
        """Top-1 ImageNet class of each patch: ``(B, 3, 224, 224)`` → long ``(B, 49)``."""
        return self._patch_logits(x).argmax(-1)

    def _patch_logits(self, x: torch.Tensor) -> torch.Tensor:
        net = self.cnn.module
        feats = net.extract_features(x)  # (B, 1280, 7, 7)
        return net._fc(feats.flatten(2).transpose(1, 2))  # (B, 49, 1000)

    def _embeds(self, inputs: MLLMInputs) -> torch.Tensor:
        ids = inputs.input_ids.to(self.device)
        emb = self.lm.get_input_embeddings()(ids)
        logits = self._patch_logits(inputs.pixels["pixel_values"].to(self.device))
        hard = self.class_embeddings[logits.argmax(-1)]
        soft = logits.softmax(-1) @ self.class_embeddings
        patches = hard + soft - soft.detach()  # straight-through: value hard, gradient soft
        pos = inputs.image_positions.to(self.device)
        emb = emb.clone()
        emb[:, pos] = patches.to(emb.dtype)
        return emb

    def forward(self, inputs: MLLMInputs, hidden_states: bool = False, attentions: bool = False) -> MLLMOutput:
        emb = self._embeds(inputs)
        out = self.lm(inputs_embeds=emb, attention_mask=torch.ones(emb.shape[:2], dtype=torch.long, device=self.device),
                      output_hidden_states=hidden_states, output_attentions=attentions, use_cache=False)
        return MLLMOutput(out.logits, tuple(out.hidden_states) if hidden_states else None,
                          tuple(out.attentions) if attentions else None)

    @torch.no_grad()
    def generate(self, inputs: MLLMInputs, max_new_tokens: int = 16) -> list[int]:
        """Greedy answer ids, cut by ``vlx.mllm.stopping.answer_end``: the end of turn, the end
        of the first sentence, or before the answer starts to repeat itself (the composition's
        small LM loops, "cat, a cat, a cat, ..."). The kept tokens are a prefix of the greedy
        decode, so their probabilities are the ones that chose them."""
        from transformers import StoppingCriteria, StoppingCriteriaList

        from vlx.mllm.stopping import answer_end, is_finished

        model = self

        class _Finished(StoppingCriteria):
            def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: object) -> torch.Tensor:
                ids = [int(t) for t in input_ids[0]]
                done = is_finished(ids, model.decode_tokens(ids))
                return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

        emb = self._embeds(inputs)
        out = self.lm.generate(inputs_embeds=emb, attention_mask=torch.ones(emb.shape[:2], dtype=torch.long,
                                                                             device=self.device),
                               max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=self.eos[0],
                               eos_token_id=self.eos, stopping_criteria=StoppingCriteriaList([_Finished()]))
        new = [int(t) for t in out[0]]
        for i, t in enumerate(new):
            if t in self.eos:
                new = new[:i]
                break
        return new[:answer_end(new, self.decode_tokens(new))]


def load_demo(device: torch.device) -> DemoMLLM:
    """The demo MLLM (about 20 s to load on a laptop CPU; cached per device)."""
    return _load(str(device))


@lru_cache(maxsize=1)
def _load(device: str) -> DemoMLLM:
    return DemoMLLM(torch.device(device))


def demo_patch_labels(model: DemoMLLM, image: ImageInput) -> list[str]:
    """The 49 patch class names (row-major 7 × 7) the demo's LLM reads for ``image``."""
    with torch.no_grad():
        idx = model.patch_classes(model.cnn.to_input(image))[0]
    return [short_name(model.cnn.labels[int(i)]) for i in idx]


__all__ = ["DemoMLLM", "load_demo", "demo_patch_labels", "short_name", "PREFILL"]
