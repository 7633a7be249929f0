"""Per-family inputs and geometry for ``vlx.mllm.hf``: prompt ids, pixel tensors, which sequence
positions are image tokens, and where every image token (and every pixel of the pixel tensor)
lies on the original image.

* LLaVA-1.5: the image is padded to a square with the processor's mean colour
  (``expand2square``, as LLaVA-1.5 was trained), so the processor's resize + centre crop keeps
  all of it; one ``g × g`` grid over the padded square (a CLS token, with the ``full`` feature
  strategy, has no cell).
* LLaVA-NeXT: the base view (``g × g`` over the whole image) then the any-resolution grid after
  the model's own unpadding, with one newline token (no cell) after each row.
* Qwen2-VL / Qwen2.5-VL: one grid of ``(h / m) × (w / m)`` merged patches over the whole image
  (``m`` = spatial merge size); pixel rows are ordered by merge block.
* Idefics3 / SmolVLM: ``rows × cols`` crops in row-major order then the global view, each
  ``(s / scale) × (s / scale)`` tokens after pixel shuffle; padding read from the pixel mask.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from vlx.mllm.adapter import MLLMInputs
from vlx.mllm.layout import ImageLayout, Tile, single_grid, square_pad_box
from vlx.models.hub import IMAGE_PROCESSOR_FILES, TOKENIZER_FILES, from_pretrained
from vlx.types import ImageInput


def load_processor(family: str, ref: str, tokenizer: Any, config: Any) -> Any:
    """The processor (or image processor + tokenizer namespace) used to build inputs."""
    if family in ("llava", "llava_next"):
        from transformers import AutoProcessor

        return from_pretrained(AutoProcessor.from_pretrained, ref, "MLLM processor",
                               (TOKENIZER_FILES, IMAGE_PROCESSOR_FILES))
    if family in ("qwen2_vl", "qwen2_5_vl"):
        from transformers import Qwen2VLImageProcessorPil

        return SimpleNamespace(image_processor=from_pretrained(Qwen2VLImageProcessorPil.from_pretrained, ref,
                                                               "MLLM image processor", (IMAGE_PROCESSOR_FILES,)),
                               tokenizer=tokenizer)
    from transformers import Idefics3ImageProcessorPil, Idefics3Processor

    image_proc = from_pretrained(Idefics3ImageProcessorPil.from_pretrained, ref, "MLLM image processor",
                                 (IMAGE_PROCESSOR_FILES,))
    v = config.vision_config
    seq_len = (v.image_size // v.patch_size) ** 2 // config.scale_factor ** 2
    return Idefics3Processor(image_processor=image_proc, tokenizer=tokenizer, image_seq_len=seq_len)


def _positions(ids: torch.Tensor, token_id: int) -> torch.Tensor:
    return torch.nonzero(ids[0] == token_id)[:, 0]


def _check(n: int, layout: ImageLayout, family: str) -> None:
    if n != layout.n:
        raise RuntimeError(f"{family}: {n} image tokens in the prompt but the layout has {layout.n}; "
                           "this checkpoint's preprocessing differs from what vlx expects")


def _messages_text(adapter: Any, question: str, prefill: str) -> str:
    proc = adapter.processor
    if getattr(proc, "chat_template", None):
        msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        text = proc.apply_chat_template(msgs, add_generation_prompt=True)
    else:
        text = f"USER: <image>\n{question} ASSISTANT:"
    return text + (" " + prefill if prefill else "")


def _llava(adapter: Any, image: ImageInput, question: str, prefill: str) -> MLLMInputs:
    proc = adapter.processor
    h, w = image.size_hw
    s = max(h, w)
    mean = tuple(int(round(255 * m)) for m in (proc.image_processor.image_mean or (0.5, 0.5, 0.5)))
    square = Image.new("RGB", (s, s), mean)
    square.paste(Image.fromarray(image.pixels), ((s - w) // 2, (s - h) // 2))
    enc = proc(text=_messages_text(adapter, question, prefill), images=[square], return_tensors="pt")
    pos = _positions(enc["input_ids"], adapter.image_token_id)
    g = adapter.config.vision_config.image_size // adapter.config.vision_config.patch_size
    box = square_pad_box((h, w))
    extra = len(pos) - g * g  # 1 with the "full" strategy (CLS first), else 0
    tile = single_grid((h, w), (g, g), box, offset=extra, name="square")
    layout = ImageLayout((h, w), (tile,), len(pos))
    _check(len(pos), layout, "llava")
    px = enc["pixel_values"]
    pl = ImageLayout((h, w), (single_grid((h, w), tuple(px.shape[-2:]), box),), px.shape[-2] * px.shape[-1])
    return MLLMInputs(enc["input_ids"], {"pixel_values": px}, "pixel_values", 1, pos, layout, pl,
                      enc["input_ids"].shape[1], image)


def _llava_next(adapter: Any, image: ImageInput, question: str, prefill: str) -> MLLMInputs:
    from transformers.image_processing_utils import select_best_resolution
    from transformers.models.llava_next.modeling_llava_next import get_anyres_image_grid_shape, unpad_image

    proc, cfg = adapter.processor, adapter.config
    h, w = image.size_hw
    enc = proc(text=_messages_text(adapter, question, prefill), images=[Image.fromarray(image.pixels)],
               return_tensors="pt")
    pos = _positions(enc["input_ids"], adapter.image_token_id)
    vs = cfg.vision_config.image_size
    g = vs // cfg.vision_config.patch_size
    nph, npw = get_anyres_image_grid_shape((h, w), cfg.image_grid_pinpoints, vs)
    grid = unpad_image(torch.zeros(1, nph * g, npw * g), (h, w))
    gh, gw = int(grid.shape[1]), int(grid.shape[2])
    hi = (np.arange(gh)[:, None] * (gw + 1) + np.arange(gw)[None, :]) + g * g
    full = (0.0, 0.0, float(w), float(h))
    layout = ImageLayout((h, w), (single_grid((h, w), (g, g), full, name="base"), Tile(hi, full, "any-res")),
                         g * g + gh * (gw + 1))
    _check(len(pos), layout, "llava_next")
    px = enc["pixel_values"]  # (1, 1 + patches, 3, s, s)
    s = int(px.shape[-1])
    bh, bw = select_best_resolution((h, w), cfg.image_grid_pinpoints)
    sy, sx = bh / h, bw / w
    if sx < sy:
        nw, nh = bw, min(math.ceil(h * sx), bh)
    else:
        nh, nw = bh, min(math.ceil(w * sy), bw)
    py, pxo = (bh - nh) // 2, (bw - nw) // 2
    tiles = [single_grid((h, w), (s, s), full, 0, "base")]
    for k in range(px.shape[1] - 1):
        i, j = divmod(k, bw // s)
        box = ((j * s - pxo) * w / nw, (i * s - py) * h / nh, ((j + 1) * s - pxo) * w / nw, ((i + 1) * s - py) * h / nh)
        tiles.append(single_grid((h, w), (s, s), box, (k + 1) * s * s, f"patch {k + 1}"))
    pl = ImageLayout((h, w), tuple(tiles), px.shape[1] * s * s)
    return MLLMInputs(enc["input_ids"], {"pixel_values": px, "image_sizes": enc["image_sizes"]}, "pixel_values", 2,
                      pos, layout, pl, enc["input_ids"].shape[1], image)


def _qwen2_vl(adapter: Any, image: ImageInput, question: str, prefill: str) -> MLLMInputs:
    ip, tok = adapter.processor.image_processor, adapter.tokenizer
    h, w = image.size_hw
    enc = ip(images=[Image.fromarray(image.pixels)], return_tensors="pt")
    thw = enc["image_grid_thw"]
    t, gh, gw = (int(v) for v in thw[0])
    m = int(ip.merge_size)
    n = t * gh * gw // (m * m)
    text = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|>"
            + "<|image_pad|>" * n + f"<|vision_end|>{question}<|im_end|>\n<|im_start|>assistant\n" + prefill)
    ids = tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    pos = _positions(ids, adapter.image_token_id)
    layout = ImageLayout((h, w), (single_grid((h, w), (gh // m, gw // m), name="merged"),), gh * gw // (m * m))
    _check(len(pos), layout, adapter.family_name)
    r, c = np.arange(gh)[:, None], np.arange(gw)[None, :]
    row = ((r // m) * (gw // m) + c // m) * m * m + (r % m) * m + (c % m)
    pl = ImageLayout((h, w), (Tile(row, (0.0, 0.0, float(w), float(h)), "patches"),), gh * gw)
    return MLLMInputs(ids, {"pixel_values": enc["pixel_values"], "image_grid_thw": thw}, "pixel_values", 1, pos,
                      layout, pl, ids.shape[1], image)


def _idefics3(adapter: Any, image: ImageInput, question: str, prefill: str) -> MLLMInputs:
    proc = adapter.processor
    h, w = image.size_hw
    pil = Image.fromarray(image.pixels)
    info = proc.image_processor(images=[[pil]], return_row_col_info=True, return_tensors="pt")
    rows, cols = int(info["rows"][0][0]), int(info["cols"][0][0])
    text = f"<|im_start|>User:<image>{question}<end_of_utterance>\nAssistant:" + (" " + prefill if prefill else "")
    enc = proc(text=text, images=[[pil]], return_tensors="pt")
    pos = _positions(enc["input_ids"], adapter.image_token_id)
    px, mask = enc["pixel_values"], enc["pixel_attention_mask"]  # (1, n, 3, s, s), (1, n, s, s)
    n_views, s = int(px.shape[1]), int(px.shape[-1])
    side = int(round(math.sqrt(proc.image_seq_len)))
    boxes, names = [], []
    for k in range(n_views):
        if rows * cols and k < rows * cols:
            i, j = divmod(k, cols)
            box, name = (j * w / cols, i * h / rows, (j + 1) * w / cols, (i + 1) * h / rows), f"crop r{i + 1}c{j + 1}"
        else:
            box, name = (0.0, 0.0, float(w), float(h)), "global"
        valid = mask[0, k].bool()
        vh, vw = int(valid.any(1).sum()), int(valid.any(0).sum())
        x0, y0, x1, y1 = box
        boxes.append((x0, y0, x0 + (x1 - x0) * s / vw, y0 + (y1 - y0) * s / vh))
        names.append(name)
    tiles = tuple(single_grid((h, w), (side, side), b, k * side * side, nm)
                  for k, (b, nm) in enumerate(zip(boxes, names)))
    layout = ImageLayout((h, w), tiles, n_views * side * side)
    _check(len(pos), layout, adapter.family_name)
    ptiles = tuple(single_grid((h, w), (s, s), b, k * s * s, nm) for k, (b, nm) in enumerate(zip(boxes, names)))
    pl = ImageLayout((h, w), ptiles, n_views * s * s)
    return MLLMInputs(enc["input_ids"], {"pixel_values": px, "pixel_attention_mask": mask}, "pixel_values", 2, pos,
                      layout, pl, enc["input_ids"].shape[1], image)


BUILDERS: dict[str, Callable[[Any, ImageInput, str, str], MLLMInputs]] = {
    "llava": _llava, "llava_next": _llava_next, "qwen2_vl": _qwen2_vl, "qwen2_5_vl": _qwen2_vl,
    "idefics3": _idefics3, "smolvlm": _idefics3}
