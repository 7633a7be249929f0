"""The fact sheet: everything measured about one explanation that a text may state."""

from __future__ import annotations

from dataclasses import dataclass

from vlx.types import Prediction, Region


@dataclass(frozen=True)
class MapFacts:
    """The map's own measurement, for one sentence: the target's probability once ``fraction``
    of the image (in ``(0, 1)``) is blurred in the map's order (``after``) and in random orders
    (``random_after``, the mean over random maps), both in ``[0, 1]``."""

    fraction: float
    after: float
    random_after: float


@dataclass(frozen=True)
class FactSheet:
    """Measured facts for verbalizers and the verifier.

    Attributes:
        model: display name of the model ("EfficientNet-Lite0").
        prediction: the top classes with probabilities in ``[0, 1]``.
        target_index, target_label, target_score: the explained class, its short name and its
            probability in ``[0, 1]``.
        method: registry name of the attribution method ("gradcam").
        regions: ranked regions (``Region.attribution_mass`` etc. are shares in ``[0, 1]``).
        other_index, other_label, other_score: the contrast class for "A and not B", if any.
        group: a coarser class name ("cat" for "Egyptian cat") where a hierarchy gives one.
        labels: all class names of the model (the verifier looks for wrongly named classes).
        map_check: the map's deletion check against random maps (``None``: not measured).
    """

    model: str
    prediction: Prediction
    target_index: int
    target_label: str
    target_score: float
    method: str
    regions: tuple[Region, ...]
    other_index: int | None = None
    other_label: str | None = None
    other_score: float | None = None
    group: str | None = None
    labels: tuple[str, ...] = ()
    map_check: MapFacts | None = None

    @property
    def is_top(self) -> bool:
        return not self.prediction.indices or self.prediction.indices[0] == self.target_index
