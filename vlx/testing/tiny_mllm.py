"""Tiny MLLMs for tests: random models of each family built from configs and saved to folders
(loaded through the real ``hf:<folder>`` path), and a planted-signal MLLM with hand-set weights.

Families: ``llava`` (LLaVA-1.5), ``llava_next`` (any-resolution 2×2 grid), ``qwen2_vl`` and
``qwen2_5_vl`` (dynamic resolution, 2×2 merge, non-square grids), ``idefics3`` (SmolVLM
architecture with image splitting: 2×2 crops + a global view). Processors are PIL image
processors with the word-level tokenizers of ``vlx.testing.tiny_vlm``; nothing is downloaded.

The planted model (``PlantedMLLM``) sees a 64×64 resize of the image as 8×8 patches. Each image
token is ``w + g_i f_i u`` where ``f_i`` is the patch's redness (mean of ``R - (G + B) / 2`` in
``[-1, 1]``) and ``g_i`` is 1 only on ``PLANTED_PATCHES``; one attention layer lets text
positions attend to image tokens (more to red planted ones) and the image tokens to the BOS sink;
``lm_head`` reads the redness into the logits of "red" / "blue" and a bigram table for the rest.
So the answer token "red" depends only on the planted patches, and the context word "colour"
predicts next tokens in the same order as the answer position (planted relevant context for ARC).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from vlx.mllm.adapter import MLLM, MLLMInputs, MLLMOutput
from vlx.mllm.layout import ImageLayout, single_grid
from vlx.types import ImageInput

MLLM_FAMILIES: tuple[str, ...] = ("llava", "llava_next", "qwen2_vl", "qwen2_5_vl", "idefics3")


def _llava_next(folder: Path) -> None:
    from transformers import (LlavaNextConfig, LlavaNextForConditionalGeneration, LlavaNextImageProcessorPil,
                              LlavaNextProcessor)

    from vlx.testing.tiny_vlm import LLAVA_TEMPLATE, _text_llama, _vision_clip, word_tokenizer

    tok = word_tokenizer(["<pad>", "<unk>", "<s>", "</s>", "<image>"], bos="<s>", pad="<pad>", unk="<unk>")
    pad, bos, eos, image = tok.convert_tokens_to_ids(["<pad>", "<s>", "</s>", "<image>"])
    pins = [[32, 64], [64, 32], [64, 64]]
    config = LlavaNextConfig(vision_config={"model_type": "clip_vision_model", **_vision_clip(32, 8)},
                             text_config={"model_type": "llama", **_text_llama(len(tok), pad, bos, eos)},
                             image_token_id=image, image_grid_pinpoints=pins, vision_feature_layer=-1,
                             vision_feature_select_strategy="default", pad_token_id=pad)
    LlavaNextForConditionalGeneration(config).save_pretrained(folder)
    ip = LlavaNextImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                                    image_grid_pinpoints=pins)
    LlavaNextProcessor(image_processor=ip, tokenizer=tok, patch_size=8, vision_feature_select_strategy="default",
                       num_additional_image_tokens=1, chat_template=LLAVA_TEMPLATE).save_pretrained(folder)


def _qwen_processor(folder: Path) -> None:
    from transformers import Qwen2VLImageProcessorPil

    Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=56 * 112, patch_size=14, merge_size=2,
                             temporal_patch_size=2).save_pretrained(folder)


def _qwen2_5_vl(folder: Path) -> None:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from vlx.testing.tiny_vlm import tiny_vlm_folder

    tiny_vlm_folder("qwen2_vl", folder)
    cfg = json.loads((folder / "config.json").read_text())
    for f in folder.glob("model*.safetensors"):
        f.unlink()
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=14, spatial_merge_size=2,
                  temporal_patch_size=2, window_size=56, out_hidden_size=32, fullatt_block_indexes=[0])
    text = {k: v for k, v in cfg["text_config"].items() if k in (
        "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
        "num_key_value_heads", "max_position_embeddings", "rope_parameters", "pad_token_id", "bos_token_id",
        "eos_token_id")}
    config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, image_token_id=cfg["image_token_id"],
                              video_token_id=cfg["video_token_id"], vision_start_token_id=cfg["vision_start_token_id"],
                              vision_end_token_id=cfg["vision_end_token_id"])
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(folder)
    _qwen_processor(folder)


def _from_vlm(family: str, patch: Callable[[Path], None] | None) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        from vlx.testing.tiny_vlm import tiny_vlm_folder

        tiny_vlm_folder(family, folder)
        if patch:
            patch(folder)
    return build


def _idefics3_split(folder: Path) -> None:
    from transformers import Idefics3ImageProcessorPil

    Idefics3ImageProcessorPil(do_image_splitting=True, size={"longest_edge": 64},
                              max_image_size={"longest_edge": 32}).save_pretrained(folder)
    pc = folder / "processor_config.json"  # transformers 5 reads the nested copy first
    cfg = json.loads(pc.read_text())
    cfg["image_processor"].update(do_image_splitting=True, size={"longest_edge": 64})
    pc.write_text(json.dumps(cfg, indent=2))


_BUILDERS: dict[str, Callable[[Path], None]] = {
    "llava": _from_vlm("llava", None), "llava_next": _llava_next,
    "qwen2_vl": _from_vlm("qwen2_vl", _qwen_processor), "qwen2_5_vl": _qwen2_5_vl,
    "idefics3": _from_vlm("idefics3", _idefics3_split)}


def tiny_mllm_folder(family: str, folder: str | Path, seed: int = 0) -> Path:
    """Save a random tiny MLLM of ``family`` (one of ``MLLM_FAMILIES``) with its tokenizer and
    image processor to ``folder``; load it with ``vlx.mllm.load_mllm("hf:<folder>")``."""
    if family not in _BUILDERS:
        raise ValueError(f"unknown tiny MLLM family {family!r}; choose one of {', '.join(MLLM_FAMILIES)}")
    torch.manual_seed(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _BUILDERS[family](folder)
    return folder


# ---------------------------------------------------------------------------------------- planted
PLANTED_GRID = 8
PLANTED_SIZE = 64
PLANTED_PATCHES: tuple[int, ...] = tuple(r * 8 + c for r in (2, 3, 4) for c in (4, 5, 6))
_WORDS = ["<pad>", "<bos>", "<eos>", "<image>", "picture", "what", "colour", "has", "it", "?", "reply", "red",
          "blue", "."] + [f"w{i}" for i in range(50)]
U, W_IMG, T_TXT, B_BOS, OFF = 0, 1, 2, 3, 4


def planted_image(size: int = 128, distractor: bool = True) -> ImageInput:
    """A grey ``size × size`` RGB image with a red square exactly over ``PLANTED_PATCHES`` and
    (``distractor``) another red square the model cannot see, top-left."""
    a = np.full((size, size, 3), 128, np.uint8)
    p = size // PLANTED_GRID
    a[2 * p:5 * p, 4 * p:7 * p] = (230, 20, 20)
    if distractor:
        a[5 * p:7 * p, 0:2 * p] = (230, 20, 20)
    return ImageInput(a, id="planted")


def planted_mask(size_hw: tuple[int, int]) -> np.ndarray:
    """Boolean ``(H, W)`` mask of the planted patches on an image of ``size_hw``."""
    grid = np.zeros(PLANTED_GRID * PLANTED_GRID, bool)
    grid[list(PLANTED_PATCHES)] = True
    h, w = size_hw
    ys = (np.arange(h) * PLANTED_GRID // h)[:, None]
    xs = (np.arange(w) * PLANTED_GRID // w)[None, :]
    return grid.reshape(PLANTED_GRID, PLANTED_GRID)[ys, xs]


class _PlantedNet(nn.Module):
    """The hand-set network: patch redness → gated image tokens → one attention layer → lm_head."""

    def __init__(self, vocab: int, alpha: float = 10.0, beta: float = 12.0, gamma: float = 0.5, seed: int = 0) -> None:
        super().__init__()
        d = OFF + vocab
        self.beta, self.gamma = beta, gamma
        self.redness = nn.Conv2d(3, 1, 8, stride=8, bias=False)
        with torch.no_grad():
            self.redness.weight.copy_(torch.tensor([1.0, -0.5, -0.5]).view(1, 3, 1, 1).expand(1, 3, 8, 8) / 64)
        gate = torch.zeros(PLANTED_GRID * PLANTED_GRID)
        gate[list(PLANTED_PATCHES)] = 1.0
        self.register_buffer("gate", gate)
        emb = torch.zeros(vocab, d)
        emb[:, T_TXT] = 1.0
        emb[torch.arange(vocab), OFF + torch.arange(vocab)] = 1.0
        emb[1, T_TXT], emb[1, B_BOS] = 0.0, 1.0
        self.embed = nn.Embedding(vocab, d, _weight=emb)
        g = torch.Generator().manual_seed(seed)
        bigram = torch.randn(vocab, vocab, generator=g)
        ids = {w: i for i, w in enumerate(_WORDS)}
        bigram[ids["colour"]] = bigram[ids["reply"]] + 0.05 * torch.randn(vocab, generator=g)
        bigram[:, [ids["red"], ids["blue"]]] = 0.0
        bigram[:, [ids["<image>"], ids["<pad>"], ids["<bos>"]]] = -4.0
        bigram[ids["red"], ids["."]] = bigram[ids["blue"], ids["."]] = 30.0
        bigram[ids["."], ids["<eos>"]] = 30.0
        head = torch.zeros(vocab, d)
        head[:, OFF:] = bigram.T
        head[ids["red"], U], head[ids["blue"], U] = alpha, -alpha
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = nn.Parameter(head)
        self.norm = nn.Identity()
        self.image_id = ids["<image>"]
        self.requires_grad_(False)

    def forward(self, ids: torch.Tensor, pixels: torch.Tensor) -> MLLMOutput:
        h0 = self.embed(ids)
        f = self.redness(pixels).flatten(1)  # (B, 64) in [-1, 1]
        img = torch.zeros(*f.shape, h0.shape[-1], dtype=h0.dtype)
        img[..., W_IMG] = 1.0
        img = img + (self.gate * f)[..., None] * torch.eye(h0.shape[-1])[U]
        mask = (ids == self.image_id)[..., None]
        h0 = h0.masked_scatter(mask, img) if mask.any() else h0
        q = self.beta * torch.stack([h0[..., T_TXT], h0[..., W_IMG]], -1)
        k = torch.stack([h0[..., W_IMG] + self.gamma * h0[..., U], h0[..., B_BOS]], -1)
        scores = q @ k.transpose(1, 2)
        t = ids.shape[1]
        causal = torch.ones(t, t, dtype=torch.bool).tril()
        attn = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        out = attn @ h0[..., U:U + 1]
        h1 = self.norm(h0 + out * torch.eye(h0.shape[-1])[U])
        return MLLMOutput(self.lm_head(h1), (h0, h1), (attn[:, None],))


class PlantedMLLM(MLLM):
    """The planted-signal MLLM behind the ``MLLM`` contract (``load_mllm("planted")``).

    Prompt: ``<bos> picture <image>×64 <question words> reply``; the answer to "what colour has
    it?" over ``planted_image()`` is "red ." and token 0 ("red") depends only on
    ``PLANTED_PATCHES``; the context word "colour" is the planted relevant token for ARC."""

    family = "planted"

    def __init__(self, device: torch.device | str = "cpu", seed: int = 0) -> None:
        from tokenizers import Tokenizer, normalizers, pre_tokenizers
        from tokenizers.models import WordLevel
        from transformers import PreTrainedTokenizerFast

        tok = Tokenizer(WordLevel({w: i for i, w in enumerate(_WORDS)}, unk_token="<pad>"))
        tok.normalizer = normalizers.Lowercase()
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>",
                                       eos_token="<eos>")
        self.net = _PlantedNet(len(_WORDS), seed=seed)
        super().__init__("planted", fast, torch.device("cpu"), 1, self.net.lm_head, self.net.norm)

    def special_ids(self) -> set[int]:
        return {0, 1, 2, 3}

    def decode_tokens(self, ids: list[int]) -> list[str]:
        return [" " + _WORDS[int(i)] for i in ids]

    def prepare(self, image: ImageInput, question: str, prefill: str = "") -> MLLMInputs:
        from PIL import Image

        h, w = image.size_hw
        small = np.asarray(Image.fromarray(image.pixels).resize((PLANTED_SIZE, PLANTED_SIZE), Image.BILINEAR))
        pixels = torch.from_numpy(small.copy()).permute(2, 0, 1)[None].float() / 255.0
        q = self.tokenizer(question + " reply " + prefill, add_special_tokens=False)["input_ids"]
        ids = [1, _WORDS.index("picture")] + [3] * PLANTED_GRID ** 2 + q
        n = PLANTED_GRID ** 2
        layout = ImageLayout((h, w), (single_grid((h, w), (PLANTED_GRID, PLANTED_GRID)),), n)
        pl = ImageLayout((h, w), (single_grid((h, w), (PLANTED_SIZE, PLANTED_SIZE)),), PLANTED_SIZE ** 2)
        return MLLMInputs(torch.tensor([ids]), {"pixel_values": pixels}, "pixel_values", 1,
                          torch.arange(2, 2 + n), layout, pl, len(ids), image)

    def forward(self, inputs: MLLMInputs, hidden_states: bool = False, attentions: bool = False) -> MLLMOutput:
        out = self.net(inputs.input_ids, inputs.pixels["pixel_values"])
        return MLLMOutput(out.logits, out.hidden_states if hidden_states else None,
                          out.attentions if attentions else None)

    @torch.no_grad()
    def generate(self, inputs: MLLMInputs, max_new_tokens: int = 16) -> list[int]:
        ids = inputs.input_ids
        new: list[int] = []
        for _ in range(max_new_tokens):
            logits = self.net(ids, inputs.pixels["pixel_values"]).logits[0, -1]
            logits[list(self.special_ids() - {2})] = float("-inf")
            t = int(logits.argmax())
            if t == 2:
                break
            new.append(t)
            ids = torch.cat([ids, torch.tensor([[t]])], 1)
        return new
