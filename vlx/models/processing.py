"""A model's image-processor settings as transformers itself resolves them (any layout: today's
``processor_config.json`` with a nested ``image_processor``, the older
``preprocessor_config.json``, legacy ``feature_extractor_type`` files with integer sizes), read
through the library's loaders, never by parsing its files here."""

from __future__ import annotations

from typing import Any

from vlx.models.hub import IMAGE_PROCESSOR_FILES, from_pretrained


def image_processor_settings(ref: str, model_type: str, what: str) -> dict[str, Any]:
    """The image processor's settings (``size``, ``crop_size``, ``image_mean``, ``image_std``,
    ``do_rescale``, ``do_normalize``, ...) for the folder or hub id ``ref``.

    Where the model type has a PIL image processor, it is instantiated with ``backend="pil"``
    (no torchvision needed) and its ``to_dict()`` returned, so class defaults fill keys the file
    omits and legacy values come back normalised (``size: 224`` → ``{"shortest_edge": 224}``).
    Where only a torchvision processor exists (SAM 2) and torchvision is missing, the library's
    resolved settings dictionary (``ImageProcessingMixin.get_image_processor_dict``) is returned.
    """
    from transformers import AutoImageProcessor
    from transformers.image_processing_utils import ImageProcessingMixin
    from transformers.models.auto.image_processing_auto import IMAGE_PROCESSOR_MAPPING_NAMES
    from transformers.utils import is_torchvision_available

    backends = IMAGE_PROCESSOR_MAPPING_NAMES.get(model_type) or {}
    needs = (IMAGE_PROCESSOR_FILES,)
    if "pil" in backends:
        proc = from_pretrained(AutoImageProcessor.from_pretrained, ref, what, needs, backend="pil")
        return dict(proc.to_dict())
    if is_torchvision_available():
        return dict(from_pretrained(AutoImageProcessor.from_pretrained, ref, what, needs).to_dict())
    return dict(from_pretrained(lambda r, **kw: ImageProcessingMixin.get_image_processor_dict(r, **kw)[0],
                                ref, what, needs))


def processor_settings(ref: str, what: str) -> dict[str, Any]:
    """The processor-level settings (``chat_template``, ``image_seq_len``, ...) as
    ``ProcessorMixin.get_processor_dict`` resolves them (``processor_config.json``,
    ``chat_template.jinja`` or the older ``chat_template.json``); ``{}`` when there are none."""
    from transformers.processing_utils import ProcessorMixin

    return dict(from_pretrained(lambda r, **kw: ProcessorMixin.get_processor_dict(r, **kw)[0], ref, what))
