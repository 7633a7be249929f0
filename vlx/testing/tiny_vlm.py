"""Tiny randomly initialised vision-language models and CLIP, built from configs with a
word-level tokenizer made in-process (``tokenizers``), their processors built from their
classes, and everything saved to a folder, so the real loading path (``vlm:hf:<folder>``,
``clip:hf:<folder>``) is exercised without any download.

Families: ``blip`` (BlipForConditionalGeneration), ``llava`` (LlavaForConditionalGeneration),
``idefics3`` (Idefics3ForConditionalGeneration), ``smolvlm`` (SmolVLMForConditionalGeneration)
and ``qwen2_vl`` (Qwen2VLForConditionalGeneration). Each folder is a few hundred kB and loads in well under a
second."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

VLM_FAMILIES: tuple[str, ...] = ("blip", "llava", "idefics3", "smolvlm", "qwen2_vl")

_BASE_WORDS = ("a an the of in on at to and or with is are this that it its what which image picture photo "
               "region part object colour color texture one short sentence describe visible shows show user "
               "assistant classifier predicted whole marked red outline close up view "
               "cat tabby tiger egyptian dog thing")
HIDDEN, HEADS, LAYERS = 32, 2, 1


def _vocabulary(specials: list[str]) -> dict[str, int]:
    """Specials first, then the words of vlx's prompts and concept vocabulary (lower case)."""
    from vlx.prompts import prompts_dir

    words: list[str] = list(specials)
    text = _BASE_WORDS + " " + " ".join(p.read_text() for p in sorted(prompts_dir().glob("describe_*.j2")))
    concepts = prompts_dir() / "concepts.txt"
    if concepts.exists():
        text += " " + concepts.read_text()
    for w in re.findall(r"\w+|[^\w\s]", text.lower()):
        if w not in words:
            words.append(w)
    return {w: i for i, w in enumerate(words)}


def word_tokenizer(specials: list[str], bos: str | None = None, eos: str | None = None, pad: str = "<pad>",
                   unk: str = "<unk>", chat_template: str | None = None):
    """A ``PreTrainedTokenizerFast`` over a word-level vocabulary (lower-cased words and
    punctuation; unknown words map to ``unk``). ``specials`` (which must include ``pad`` and
    ``unk``) get the first ids and are never split; ``bos``/``eos`` are added around every text
    when given."""
    from tokenizers import AddedToken, Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = _vocabulary(specials)
    tok = Tokenizer(WordLevel(vocab, unk_token=unk))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    if bos or eos:
        single = " ".join(([f"{bos}:0"] if bos else []) + ["$A:0"] + ([f"{eos}:0"] if eos else []))
        tok.post_processor = processors.TemplateProcessing(
            single=single, special_tokens=[(t, vocab[t]) for t in (bos, eos) if t])
    kw = {k: v for k, v in (("bos_token", bos), ("eos_token", eos)) if v}
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=pad, unk_token=unk, **kw)
    if chat_template:
        fast.chat_template = chat_template
    return fast


def _text_llama(vocab_size: int, pad: int, bos: int, eos: int) -> dict:
    return dict(vocab_size=vocab_size, hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=LAYERS,
                num_attention_heads=HEADS, num_key_value_heads=HEADS, max_position_embeddings=512,
                pad_token_id=pad, bos_token_id=bos, eos_token_id=eos, tie_word_embeddings=False)


def _vision_clip(image_size: int, patch: int, layers: int = LAYERS) -> dict:
    return dict(hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=layers,
                num_attention_heads=HEADS, image_size=image_size, patch_size=patch, projection_dim=HIDDEN)


def tiny_clip_folder(folder: str | Path, image_size: int = 32, patch: int = 8, seed: int = 0,
                     vision_layers: int = LAYERS) -> Path:
    """Save a random tiny ``CLIPModel`` (``vision_layers`` blocks in its vision tower), a word-level
    tokenizer and a ``CLIPImageProcessor`` config to ``folder``; returns it. Load with
    ``vlx.models.clip.load_clip("hf:<folder>")``."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    torch.manual_seed(seed)
    folder = Path(folder)
    tok = word_tokenizer(["<pad>", "<unk>", "<|startoftext|>", "<|endoftext|>"], bos="<|startoftext|>",
                         eos="<|endoftext|>")
    ids = tok.convert_tokens_to_ids(["<pad>", "<|startoftext|>", "<|endoftext|>"])
    text = dict(vocab_size=len(tok), hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=LAYERS,
                num_attention_heads=HEADS, max_position_embeddings=64, projection_dim=HIDDEN,
                pad_token_id=ids[0], bos_token_id=ids[1], eos_token_id=ids[2])
    config = CLIPConfig(text_config=text, vision_config=_vision_clip(image_size, patch, vision_layers),
                        projection_dim=HIDDEN)
    model = CLIPModel(config)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    CLIPImageProcessorPil(size={"shortest_edge": image_size},
                          crop_size={"height": image_size, "width": image_size}).save_pretrained(folder)
    return folder


# Chat templates shaped like the real ones (LLaVA-1.5, SmolVLM / Idefics3, Qwen2-VL).
_CONTENT = ("{% for c in m['content'] %}{% if c['type'] == 'image' %}IMG{% else %}{{ c['text'] }}{% endif %}"
            "{% endfor %}")
LLAVA_TEMPLATE = ("{% for m in messages %}{% if m['role'] == 'user' %}USER: "
                  + _CONTENT.replace("IMG", "<image>\n") + " {% else %}ASSISTANT: "
                  + _CONTENT.replace("IMG", "") + " {% endif %}{% endfor %}"
                  "{% if add_generation_prompt %}ASSISTANT:{% endif %}")
IDEFICS3_TEMPLATE = ("<|im_start|>{% for m in messages %}{{ m['role'] | capitalize }}:"
                     + _CONTENT.replace("IMG", "<image>") + "<end_of_utterance>\n{% endfor %}"
                     "{% if add_generation_prompt %}Assistant:{% endif %}")
QWEN2_VL_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
                     + _CONTENT.replace("IMG", "<|vision_start|><|image_pad|><|vision_end|>")
                     + "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _blip(folder: Path) -> None:
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipImageProcessorPil, BlipProcessor

    tok = word_tokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[DEC]"], bos="[CLS]", eos="[SEP]", pad="[PAD]",
                         unk="[UNK]")
    pad, sep, dec = tok.convert_tokens_to_ids(["[PAD]", "[SEP]", "[DEC]"])
    text = dict(vocab_size=len(tok), hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=LAYERS,
                num_attention_heads=HEADS, encoder_hidden_size=HIDDEN, max_position_embeddings=128,
                pad_token_id=pad, bos_token_id=dec, eos_token_id=sep, sep_token_id=sep)
    vision = dict(hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=LAYERS,
                  num_attention_heads=HEADS, image_size=32, patch_size=8)
    BlipForConditionalGeneration(BlipConfig(text_config=text, vision_config=vision,
                                            projection_dim=HIDDEN)).save_pretrained(folder)
    image = BlipImageProcessorPil(size={"height": 32, "width": 32})
    BlipProcessor(image_processor=image, tokenizer=tok).save_pretrained(folder)


def _llava(folder: Path) -> None:
    from transformers import (CLIPImageProcessorPil, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor)

    tok = word_tokenizer(["<pad>", "<unk>", "<s>", "</s>", "<image>"], bos="<s>", pad="<pad>", unk="<unk>")
    pad, bos, eos, image = tok.convert_tokens_to_ids(["<pad>", "<s>", "</s>", "<image>"])
    config = LlavaConfig(vision_config={"model_type": "clip_vision_model", **_vision_clip(32, 8)},
                         text_config={"model_type": "llama", **_text_llama(len(tok), pad, bos, eos)},
                         image_token_id=image, vision_feature_select_strategy="default", vision_feature_layer=-1,
                         projector_hidden_act="gelu", pad_token_id=pad)
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    image_proc = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    LlavaProcessor(image_processor=image_proc, tokenizer=tok, patch_size=8, vision_feature_select_strategy="default",
                   num_additional_image_tokens=1, chat_template=LLAVA_TEMPLATE).save_pretrained(folder)


def _idefics3(folder: Path) -> None:
    from transformers import (Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessorPil,
                              Idefics3Processor)

    specials = ["<pad>", "<unk>", "<|im_start|>", "<end_of_utterance>", "<image>", "<fake_token_around_image>",
                "<global-img>"]
    tok = word_tokenizer(specials, pad="<pad>", unk="<unk>")
    pad, bos, eos, image = tok.convert_tokens_to_ids(["<pad>", "<|im_start|>", "<end_of_utterance>", "<image>"])
    vision = dict(hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=LAYERS,
                  num_attention_heads=HEADS, image_size=32, patch_size=8)
    config = Idefics3Config(vision_config=vision, text_config=_text_llama(len(tok), pad, bos, eos),
                            image_token_id=image, scale_factor=2, pad_token_id=pad)
    Idefics3ForConditionalGeneration(config).save_pretrained(folder)
    image_proc = Idefics3ImageProcessorPil(do_image_splitting=False, size={"longest_edge": 32},
                                           max_image_size={"longest_edge": 32})
    Idefics3Processor(image_processor=image_proc, tokenizer=tok, image_seq_len=4,
                      chat_template=IDEFICS3_TEMPLATE).save_pretrained(folder)


def _smolvlm(folder: Path) -> None:
    import json

    from transformers import SmolVLMConfig, SmolVLMForConditionalGeneration, SmolVLMImageProcessorPil

    specials = ["<pad>", "<unk>", "<|im_start|>", "<end_of_utterance>", "<image>", "<fake_token_around_image>",
                "<global-img>"]
    tok = word_tokenizer(specials, pad="<pad>", unk="<unk>")
    pad, bos, eos, image = tok.convert_tokens_to_ids(["<pad>", "<|im_start|>", "<end_of_utterance>", "<image>"])
    vision = dict(hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=LAYERS,
                  num_attention_heads=HEADS, image_size=32, patch_size=8)
    config = SmolVLMConfig(vision_config=vision, text_config=_text_llama(len(tok), pad, bos, eos),
                           image_token_id=image, scale_factor=2, pad_token_id=pad)
    SmolVLMForConditionalGeneration(config).save_pretrained(folder)
    # SmolVLMProcessor needs a torchvision video processor: save its parts as the hub holds them.
    tok.save_pretrained(folder)
    SmolVLMImageProcessorPil(do_image_splitting=False, size={"longest_edge": 32},
                             max_image_size={"longest_edge": 32}).save_pretrained(folder)
    (folder / "processor_config.json").write_text(json.dumps({"processor_class": "SmolVLMProcessor",
                                                              "image_seq_len": 4}))
    (folder / "chat_template.jinja").write_text(IDEFICS3_TEMPLATE)


def _qwen2_vl(folder: Path) -> None:
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessorPil

    specials = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>", "<|endoftext|>"]
    tok = word_tokenizer(specials, pad="<pad>", unk="<unk>")
    ids = dict(zip(specials, tok.convert_tokens_to_ids(specials)))
    text = dict(vocab_size=len(tok), hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=LAYERS,
                num_attention_heads=HEADS, num_key_value_heads=HEADS, max_position_embeddings=512,
                rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0},
                pad_token_id=ids["<pad>"], bos_token_id=ids["<|im_start|>"], eos_token_id=ids["<|im_end|>"])
    vision = dict(depth=LAYERS, embed_dim=HIDDEN, hidden_size=HIDDEN, num_heads=HEADS, mlp_ratio=2, patch_size=14,
                  spatial_merge_size=2, temporal_patch_size=2, in_channels=3)
    config = Qwen2VLConfig(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                           video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                           vision_end_token_id=ids["<|vision_end|>"])
    Qwen2VLForConditionalGeneration(config).save_pretrained(folder)
    image_proc = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=56 * 56, patch_size=14, merge_size=2,
                                          temporal_patch_size=2)
    # Qwen2VLProcessor's video processor needs torchvision, so it cannot be built here: save
    # its parts as the hub repositories hold them (vlx.models.vlm composes them when needed).
    tok.chat_template = QWEN2_VL_TEMPLATE
    tok.save_pretrained(folder)
    image_proc.save_pretrained(folder)
    (folder / "chat_template.jinja").write_text(QWEN2_VL_TEMPLATE)


_BUILDERS: dict[str, Callable[[Path], None]] = {"blip": _blip, "llava": _llava, "idefics3": _idefics3,
                                                "smolvlm": _smolvlm, "qwen2_vl": _qwen2_vl}


def tiny_vlm_folder(family: str, folder: str | Path, seed: int = 0) -> Path:
    """Save a random tiny vision-language model of ``family`` (one of ``VLM_FAMILIES``) with its
    processor (tokenizer, image processor, chat template) to ``folder``; returns the folder.
    Load with ``vlx.models.vlm.load_vlm("hf:<folder>")``."""
    import torch

    if family not in _BUILDERS:
        raise ValueError(f"unknown tiny VLM family {family!r}; choose one of {', '.join(VLM_FAMILIES)}")
    torch.manual_seed(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _BUILDERS[family](folder)
    return folder
