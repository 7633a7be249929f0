"""Vision-language models through transformers, by hub id or local folder (``hf:<id or path>``):
BLIP captioning, LLaVA(-NeXT), Idefics3 / SmolVLM and Qwen2-VL / Qwen2.5-VL. The model class
is picked from the config's ``model_type``; image processors run on their PIL backend, so no
torchvision is needed. Processors whose class insists on a torchvision video processor
(Qwen2-VL, SmolVLM) are composed here from their tokenizer and image processor when
torchvision is missing."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from vlx.device import resolve_device
from vlx.errors import UsageError
from vlx.models.hub import (CONFIG_FILES, IMAGE_PROCESSOR_FILES, TOKENIZER_FILES, WEIGHT_FILES, display_name,
                            from_pretrained)

#: model_type → transformers class name. ``captioner``: continues a text prefix (no chat).
MODEL_CLASSES: dict[str, str] = {
    "blip": "BlipForConditionalGeneration",
    "llava": "LlavaForConditionalGeneration",
    "llava_next": "LlavaNextForConditionalGeneration",
    "idefics3": "Idefics3ForConditionalGeneration",
    "smolvlm": "SmolVLMForConditionalGeneration",
    "qwen2_vl": "Qwen2VLForConditionalGeneration",
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
}
CAPTIONERS = frozenset({"blip"})
_QWEN = frozenset({"qwen2_vl", "qwen2_5_vl"})


class VisionLanguageModel:
    """One image + one prompt → generated text, greedy.

    Attributes:
        name: ``hf:<ref>``; family: the config's ``model_type``; captioner: whether the prompt is
        a caption prefix (BLIP) rather than an instruction; model, processor: transformers objects.
    """

    def __init__(self, model, processor, family: str, name: str, device: torch.device) -> None:
        self.model = model.eval().to(device)
        self.processor = processor
        self.family = family
        self.captioner = family in CAPTIONERS
        self.name = name
        self.device = device

    def prompt_text(self, prompt: str) -> str:
        """The text the model reads: the chat template applied to one user turn holding the
        image and ``prompt`` (captioners: ``prompt`` itself)."""
        if self.captioner:
            return prompt
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        if getattr(self.processor, "chat_template", None) is None:
            raise UsageError(f"{self.name} has no chat template; save the processor with one "
                             "(processor.chat_template = ...) or use a chat model.")
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def inputs(self, image: np.ndarray, prompt: str) -> dict[str, torch.Tensor]:
        """Model inputs for RGB uint8 ``image`` ``(h, w, 3)`` and ``prompt``: ``input_ids``
        ``(1, T)``, ``attention_mask``, ``pixel_values`` and the family's extras, on the device."""
        from PIL import Image

        enc = self.processor(images=[Image.fromarray(image)], text=[self.prompt_text(prompt)], return_tensors="pt")
        out = {}
        for k, v in dict(enc).items():
            if isinstance(v, torch.Tensor):
                v = v.to(self.device)
                out[k] = v.to(self.model.dtype) if v.is_floating_point() else v
        return out

    @torch.no_grad()
    def generate(self, image: np.ndarray, prompt: str, max_new_tokens: int = 40) -> str:
        """The model's text for ``image`` (RGB uint8 ``(h, w, 3)``) and ``prompt``, greedy, without
        the prompt (a captioner's prefix is removed too)."""
        enc = self.inputs(image, prompt)
        tok = getattr(self.processor, "tokenizer", self.processor)
        kw: dict[str, Any] = {}
        if not self.captioner:  # BLIP's generate sets the pad token itself
            kw["pad_token_id"] = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        out = self.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, **kw)
        # BLIP drops the prompt's final [SEP] before generating; decoder-only models keep the whole prompt.
        start = enc["input_ids"].shape[1] - (1 if self.captioner else 0)
        return tok.decode(out[0, start:], skip_special_tokens=True).strip()


class ComposedProcessor:
    """The part of a Qwen2-VL / SmolVLM processor vlx uses, composed from its tokenizer and PIL
    image processor for machines without torchvision (their processor classes require a
    torchvision video processor): applies the chat template, expands the image token to the
    number of image features, and tokenizes."""

    def __init__(self, tokenizer, image_processor, chat_template: str | None, family: str,
                 image_seq_len: int | None = None) -> None:
        self.tokenizer, self.image_processor, self.chat_template = tokenizer, image_processor, chat_template
        self.family, self.image_seq_len = family, image_seq_len

    def apply_chat_template(self, messages: list[dict[str, Any]], add_generation_prompt: bool = True,
                            tokenize: bool = False) -> str:
        return self.tokenizer.apply_chat_template(messages, chat_template=self.chat_template, tokenize=tokenize,
                                                  add_generation_prompt=add_generation_prompt)

    def __call__(self, images: list, text: list[str], return_tensors: str = "pt") -> dict[str, torch.Tensor]:
        img = dict(self.image_processor(images=images, return_tensors=return_tensors))
        if self.family in _QWEN:
            merge = int(getattr(self.image_processor, "merge_size", 2))
            n = int(img["image_grid_thw"][0].prod()) // merge ** 2
            token = "<|image_pad|>"
            text = [t.replace(token, "\0" * n, 1).replace("\0", token) for t in text]
        else:  # SmolVLM: the image token becomes the tiles' and the global image's token blocks
            from transformers.models.smolvlm.processing_smolvlm import get_image_prompt_string

            if not self.image_seq_len:
                raise UsageError("the SmolVLM folder's processor_config.json lacks image_seq_len; save the "
                                 "processor with save_pretrained.")
            rows, cols = img.get("rows", [[0]])[0][0], img.get("cols", [[0]])[0][0]
            block = get_image_prompt_string(rows, cols, int(self.image_seq_len), "<fake_token_around_image>",
                                            "<image>", "<global-img>")
            text = [t.replace("<image>", block, 1) for t in text]
            img = {k: v for k, v in img.items() if k in ("pixel_values", "pixel_attention_mask")}
        enc = dict(self.tokenizer(text, return_tensors=return_tensors, add_special_tokens=False))
        return {**enc, **img}


def load_vlm(spec: str, device: str | torch.device = "auto") -> VisionLanguageModel:
    """Load ``hf:<hub id or folder>`` (a bare id or folder is accepted too); cached per
    (spec, device). An unsupported ``model_type`` raises a one-line UsageError."""
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    return _load(spec.strip(), str(dev))


@lru_cache(maxsize=2)
def _load(spec: str, device: str) -> VisionLanguageModel:
    import transformers
    from transformers import AutoConfig
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    ref = spec[3:] if spec.startswith("hf:") else spec
    if not ref:
        raise UsageError("empty VLM spec; use vlm:hf:<hub id or folder>.")
    config = from_pretrained(AutoConfig.from_pretrained, ref, "VLM", (CONFIG_FILES,))
    family = getattr(config, "model_type", "")
    if family not in MODEL_CLASSES:
        raise UsageError(f"{ref!r} is a {family!r} model; the vlm describer supports "
                         f"{', '.join(sorted(MODEL_CLASSES))}.")
    cls = getattr(transformers, MODEL_CLASSES[family])
    dtype = torch.float32 if device == "cpu" else "auto"
    model = from_pretrained(cls.from_pretrained, ref, "VLM", (CONFIG_FILES, WEIGHT_FILES), dtype=dtype)
    processor = _processor(ref, family)
    name = f"hf:{display_name(ref)}"
    return VisionLanguageModel(model, processor, family, name, torch.device(device))


def _processor(ref: str, family: str):
    """The family's processor (with torchvision: its default backends; without: the PIL image
    backend), or a ``ComposedProcessor`` where the class needs torchvision and it is missing."""
    from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer
    from transformers.utils import is_torchvision_available

    from vlx.models.processing import processor_settings

    kw = {} if is_torchvision_available() else {"backend": "pil"}  # "pil" would also reach video processors
    # SmolVLMProcessor also needs the num2words package; Idefics3's prompt format is the same.
    needs_composing = family in _QWEN | {"smolvlm"} and not is_torchvision_available() or (
        family == "smolvlm" and importlib.util.find_spec("num2words") is None)
    files = (TOKENIZER_FILES, IMAGE_PROCESSOR_FILES)
    if not needs_composing:
        return from_pretrained(AutoProcessor.from_pretrained, ref, "VLM processor", files, **kw)
    tok = from_pretrained(AutoTokenizer.from_pretrained, ref, "VLM tokenizer", (TOKENIZER_FILES,))
    image = from_pretrained(AutoImageProcessor.from_pretrained, ref, "VLM image processor",
                            (IMAGE_PROCESSOR_FILES,), **kw)
    extra = processor_settings(ref, "VLM processor")
    template = extra.get("chat_template") or getattr(tok, "chat_template", None)
    return ComposedProcessor(tok, image, template, family, extra.get("image_seq_len"))
