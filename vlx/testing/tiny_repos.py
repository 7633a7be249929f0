"""Tiny random models shaped like real hub repositories: the same file names and layout
(``preprocessor_config.json`` + ``chat_template.json`` where the repository holds them), the
same config keys (including old ones the repositories still carry: ``torch_dtype``, an old
``transformers_version``, Qwen2-VL's flat text config with ``rope_scaling: mrope``, CLIP's
legacy token ids), the same processor and tokenizer classes, special tokens and chat templates,
at sizes of a few hundred kB. ``build_hub_cache`` puts them into a Hugging Face cache under the
real ids, so ``hf:<id>`` loads them offline exactly as it loads the real weights.

Not reproduced: the real vocabularies (tokenizers are small BPE / WordPiece models of the
real classes, ``vlx.testing.tiny_tokenizers``) and the old weight names some repositories
still use (weights are saved by today's transformers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
H = 32  # hidden width of every tiny tower

LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}"
    "{% endif %}{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', "
    "'image') %}{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}"
    "{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}")
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in content or "
    "'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def _write(folder: Path, name: str, data: dict[str, Any]) -> None:
    (folder / name).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _patch_config(folder: Path, **extra: Any) -> dict[str, Any]:
    """Add the keys old repositories carry (``torch_dtype``, an old ``transformers_version``)."""
    cfg = json.loads((folder / "config.json").read_text())
    cfg.pop("dtype", None)
    cfg.update(extra)
    _write(folder, "config.json", cfg)
    return cfg


def sam_vit_base(folder: Path) -> None:
    """facebook/sam-vit-base: ``SamModel`` + the older ``preprocessor_config.json`` only."""
    from vlx.testing.tiny_sam import tiny_sam_folder

    tiny_sam_folder(folder, image_size=64)
    _patch_config(folder, torch_dtype="float32", transformers_version="4.29.0.dev0")
    _write(folder, "preprocessor_config.json", {
        "do_normalize": True, "do_pad": True, "do_rescale": True, "do_resize": True,
        "image_mean": [0.485, 0.456, 0.406], "image_processor_type": "SamImageProcessor",
        "image_std": [0.229, 0.224, 0.225], "pad_size": {"height": 64, "width": 64},
        "processor_class": "SamProcessor", "resample": 2, "rescale_factor": 0.00392156862745098,
        "size": {"longest_edge": 64}})


def clip_vit_base_patch32(folder: Path) -> None:
    """openai/clip-vit-base-patch32: ``CLIPModel`` whose text config keeps the original's
    bos/eos/pad ids 0/2/1 (the tokenizer's end token is its highest id), a
    ``CLIPFeatureExtractor``-era ``preprocessor_config.json`` (integer ``size``/``crop_size``)
    and a ``CLIPTokenizer``."""
    from transformers import CLIPConfig, CLIPModel

    from vlx.testing.tiny_tokenizers import clip_tokenizer

    tok = clip_tokenizer()
    text = dict(vocab_size=len(tok), hidden_size=H, intermediate_size=2 * H, num_hidden_layers=1,
                num_attention_heads=2, max_position_embeddings=77, bos_token_id=0, eos_token_id=2, pad_token_id=1)
    vision = dict(hidden_size=H, intermediate_size=2 * H, num_hidden_layers=2, num_attention_heads=2,
                  image_size=32, patch_size=8)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=H,
                         logit_scale_init_value=2.6592)).save_pretrained(folder)
    _patch_config(folder, torch_dtype="float32", transformers_version=None, initializer_factor=1.0)
    tok.save_pretrained(folder)
    _write(folder, "preprocessor_config.json", {
        "crop_size": 32, "do_center_crop": True, "do_normalize": True, "do_resize": True,
        "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": CLIP_MEAN, "image_std": CLIP_STD,
        "resample": 3, "size": 32})


def blip_image_captioning_base(folder: Path) -> None:
    """Salesforce/blip-image-captioning-base: ``BlipForConditionalGeneration``, a
    ``BlipImageProcessor`` config with an integer ``size``, a BERT tokenizer with ``[DEC]`` as bos."""
    from transformers import BlipConfig, BlipForConditionalGeneration

    from vlx.testing.tiny_tokenizers import bert_tokenizer

    tok = bert_tokenizer()
    pad, sep, dec = tok.convert_tokens_to_ids(["[PAD]", "[SEP]", "[DEC]"])
    text = dict(vocab_size=len(tok), hidden_size=H, intermediate_size=2 * H, num_hidden_layers=1,
                num_attention_heads=2, encoder_hidden_size=H, max_position_embeddings=128,
                pad_token_id=pad, bos_token_id=dec, eos_token_id=sep, sep_token_id=sep)
    vision = dict(hidden_size=H, intermediate_size=2 * H, num_hidden_layers=1, num_attention_heads=2,
                  image_size=32, patch_size=16)
    BlipForConditionalGeneration(BlipConfig(text_config=text, vision_config=vision,
                                            projection_dim=H)).save_pretrained(folder)
    _patch_config(folder, torch_dtype="float32", transformers_version="4.26.0.dev0")
    tok.save_pretrained(folder)
    _write(folder, "preprocessor_config.json", {
        "do_normalize": True, "do_resize": True, "image_mean": CLIP_MEAN, "image_processor_type": "BlipImageProcessor",
        "image_std": CLIP_STD, "processor_class": "BlipProcessor", "size": 32})


def llava_1_5_7b_hf(folder: Path) -> None:
    """llava-hf/llava-1.5-7b-hf: ``LlavaForConditionalGeneration`` (CLIP tower, feature layer
    -2, ``default`` strategy), ``preprocessor_config.json`` (``CLIPImageProcessor``),
    ``processor_config.json`` (patch size, strategy), ``chat_template.json``, a ``LlamaTokenizer``
    with ``<image>`` and ``<pad>`` added after the vocabulary."""
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    from vlx.testing.tiny_tokenizers import llama_tokenizer

    tok = llama_tokenizer()
    image, pad = tok.convert_tokens_to_ids(["<image>", "<pad>"])
    text = dict(model_type="llama", vocab_size=len(tok), hidden_size=H, intermediate_size=2 * H,
                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                bos_token_id=1, eos_token_id=2, pad_token_id=pad, tie_word_embeddings=False)
    vision = dict(model_type="clip_vision_model", hidden_size=H, intermediate_size=2 * H, num_hidden_layers=2,
                  num_attention_heads=2, image_size=28, patch_size=14, projection_dim=H)
    config = LlavaConfig(text_config=text, vision_config=vision, image_token_index=image, pad_token_id=pad,
                         projector_hidden_act="gelu", vision_feature_layer=-2,
                         vision_feature_select_strategy="default")
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    _patch_config(folder, torch_dtype="float16", transformers_version="4.36.0.dev0")
    tok.save_pretrained(folder)
    for f in ("chat_template.jinja",):
        (folder / f).unlink(missing_ok=True)
    _write(folder, "preprocessor_config.json", {
        "crop_size": {"height": 28, "width": 28}, "do_center_crop": True, "do_convert_rgb": True,
        "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": CLIP_MEAN,
        "image_processor_type": "CLIPImageProcessor", "image_std": CLIP_STD, "processor_class": "LlavaProcessor",
        "resample": 3, "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 28}})
    _write(folder, "processor_config.json", {"num_additional_image_tokens": 1, "patch_size": 14,
                                             "processor_class": "LlavaProcessor",
                                             "vision_feature_select_strategy": "default"})
    _write(folder, "chat_template.json", {"chat_template": LLAVA_CHAT_TEMPLATE})


def qwen2_vl_2b_instruct(folder: Path) -> None:
    """Qwen/Qwen2-VL-2B-Instruct: the repository's flat config (text keys at the top level,
    ``rope_scaling: {"type": "mrope"}``, a vision config with ``embed_dim``/``in_chans``),
    ``preprocessor_config.json`` (``Qwen2VLImageProcessor``, min/max pixels), ``chat_template.json``,
    a ``Qwen2Tokenizer`` with the real special tokens and ``generation_config.json``."""
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    from vlx.testing.tiny_tokenizers import qwen2_tokenizer

    tok = qwen2_tokenizer(QWEN2_VL_CHAT_TEMPLATE)
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_end|>", "<|vision_start|>",
                                                      "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>",
                                                      "<|video_pad|>")}
    flat = dict(vocab_size=len(tok), hidden_size=H, intermediate_size=2 * H, num_hidden_layers=2,
                num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32768, rms_norm_eps=1e-6,
                rope_theta=1000000.0, hidden_act="silu", attention_dropout=0.0, max_window_layers=2,
                sliding_window=32768, use_sliding_window=False, use_cache=True, tie_word_embeddings=True,
                initializer_range=0.02, bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"])
    vision = dict(depth=1, embed_dim=H, mlp_ratio=2, num_heads=2, in_chans=3, hidden_size=H, patch_size=14,
                  spatial_merge_size=2, spatial_patch_size=14, temporal_patch_size=2)
    rope = {"type": "mrope", "mrope_section": [2, 3, 3]}
    tokens = dict(vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
                  vision_token_id=ids["<|vision_pad|>"], image_token_id=ids["<|image_pad|>"],
                  video_token_id=ids["<|video_pad|>"])
    text = {k: v for k, v in flat.items() if k not in ("tie_word_embeddings",)}
    config = Qwen2VLConfig(text_config={**text, "rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3],
                                                                    "rope_theta": 1000000.0}},
                           vision_config=vision, tie_word_embeddings=True, **tokens)
    Qwen2VLForConditionalGeneration(config).save_pretrained(folder)
    _write(folder, "config.json", {"architectures": ["Qwen2VLForConditionalGeneration"], "model_type": "qwen2_vl",
                                   **flat, **tokens, "vision_config": vision, "rope_scaling": rope,
                                   "torch_dtype": "bfloat16", "transformers_version": "4.41.2"})
    _write(folder, "generation_config.json", {
        "bos_token_id": ids["<|endoftext|>"], "pad_token_id": ids["<|endoftext|>"], "do_sample": True,
        "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]], "repetition_penalty": 1.0, "temperature": 0.01,
        "top_p": 0.001, "top_k": 1, "transformers_version": "4.37.0"})
    tok.save_pretrained(folder)
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    _write(folder, "preprocessor_config.json", {
        "min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
        "image_mean": CLIP_MEAN, "image_std": CLIP_STD, "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": "Qwen2VLProcessor"})
    _write(folder, "chat_template.json", {"chat_template": QWEN2_VL_CHAT_TEMPLATE})


def smollm2_135m_instruct(folder: Path) -> None:
    """HuggingFaceTB/SmolLM2-135M-Instruct: ``LlamaForCausalLM`` (tied embeddings, bos 1,
    eos/pad 2), a ``GPT2Tokenizer`` with its 17 special tokens and its chat template (in
    ``tokenizer_config.json``), ``generation_config.json``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from vlx.testing.tiny_tokenizers import smollm2_tokenizer

    tok = smollm2_tokenizer(SMOLLM2_CHAT_TEMPLATE)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=H * 2, intermediate_size=4 * H, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192,
                         rope_theta=100000, rms_norm_eps=1e-5, tie_word_embeddings=True,
                         bos_token_id=1, eos_token_id=2, pad_token_id=2)
    LlamaForCausalLM(config).save_pretrained(folder)
    _patch_config(folder, torch_dtype="bfloat16", transformers_version="4.42.3", is_llama_config=True,
                  rope_interleaved=False, pretraining_tp=1)
    _write(folder, "generation_config.json", {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2,
                                              "transformers_version": "4.42.3"})
    tok.save_pretrained(folder)
    template = folder / "chat_template.jinja"  # the repository keeps it in tokenizer_config.json
    if template.exists():
        cfg = json.loads((folder / "tokenizer_config.json").read_text())
        cfg["chat_template"] = template.read_text()
        _write(folder, "tokenizer_config.json", cfg)
        template.unlink()


REPOS: dict[str, Callable[[Path], None]] = {
    "facebook/sam-vit-base": sam_vit_base,
    "openai/clip-vit-base-patch32": clip_vit_base_patch32,
    "Salesforce/blip-image-captioning-base": blip_image_captioning_base,
    "llava-hf/llava-1.5-7b-hf": llava_1_5_7b_hf,
    "Qwen/Qwen2-VL-2B-Instruct": qwen2_vl_2b_instruct,
    "HuggingFaceTB/SmolLM2-135M-Instruct": smollm2_135m_instruct,
}


def tiny_repo_folder(repo_id: str, folder: str | Path, seed: int = 0) -> Path:
    """Save the tiny replica of ``repo_id`` (a key of ``REPOS``) to ``folder``; returns it."""
    if repo_id not in REPOS:
        raise ValueError(f"no tiny replica of {repo_id!r}; choose one of {', '.join(REPOS)}")
    torch.manual_seed(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    REPOS[repo_id](folder)
    return folder


def build_hub_cache(hf_home: str | Path, work: str | Path, repo_ids: tuple[str, ...] = tuple(REPOS)) -> Path:
    """Build each replica under ``work`` and put it into ``hf_home/hub`` under its real id (the
    layout ``hf download`` leaves); returns the hub cache folder. Point ``HF_HOME``
    at ``hf_home`` and set ``HF_HUB_OFFLINE=1`` to load them."""
    from vlx.testing.hub_cache import put_in_cache

    hub = Path(hf_home) / "hub"
    for repo_id in repo_ids:
        folder = tiny_repo_folder(repo_id, Path(work) / repo_id.replace("/", "--"))
        put_in_cache(folder, repo_id, hub)
    return hub
