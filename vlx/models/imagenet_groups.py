"""Coarser names for ImageNet-1k classes (group-level explanations: "a cat" for "Egyptian cat").
ImageNet's class indices follow WordNet, so contiguous index ranges form groups; only ranges that
are one clear group are listed, and other classes have no group."""

from __future__ import annotations

GROUPS: tuple[tuple[int, int, str], ...] = (
    (0, 6, "fish"), (7, 24, "bird"), (25, 32, "amphibian"), (33, 37, "turtle"), (38, 48, "lizard"),
    (49, 50, "crocodilian"), (52, 68, "snake"), (72, 77, "spider"), (80, 100, "bird"), (127, 146, "bird"),
    (151, 268, "dog"), (269, 272, "wolf"), (277, 280, "fox"), (281, 285, "cat"), (286, 293, "big cat"),
    (294, 297, "bear"), (300, 326, "insect"), (330, 332, "rabbit"), (365, 384, "primate"),
    (385, 386, "elephant"), (389, 397, "fish"), (924, 957, "food"), (959, 967, "food or drink"),
)


def imagenet_group(index: int) -> str | None:
    """The group name of an ImageNet-1k class index, or ``None`` where no clear group exists."""
    for lo, hi, name in GROUPS:
        if lo <= index <= hi:
            return name
    return None


def is_imagenet(labels: list[str] | tuple[str, ...]) -> bool:
    """Whether ``labels`` are ImageNet-1k's 1000 classes in their usual order."""
    return len(labels) == 1000 and labels[0].startswith("tench") and labels[999].startswith("toilet tissue")
