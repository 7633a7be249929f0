"""What a batch is run with: the explain configuration shared with ``vlx explain`` plus the
per-batch options, and the process / thread arithmetic, done once here."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from vlx.config import ExplainConfig


@dataclass(frozen=True)
class BatchOptions:
    """Options of a batch run (see ``vlx batch --help``).

    Attributes:
        explain: every ``Explainer`` option (``vlx.config.ExplainConfig``).
        target, contrast: class to explain for items whose manifest line names none (default:
            the top prediction) and the class to contrast it with (``None``: no contrast).
        max_pixels: items larger than this are recorded as errors.
        threads: torch threads per process (0 keeps torch's default in one process; see
            ``threads_per_process``).
    """

    explain: ExplainConfig = field(default_factory=ExplainConfig)
    target: int | str | None = None
    contrast: int | str | None = None
    max_pixels: int = 80_000_000
    threads: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict; ``BatchOptions.from_json`` reads it back (worker processes)."""
        return {**dataclasses.asdict(self), "explain": self.explain.to_json()}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "BatchOptions":
        return cls(**{**d, "explain": ExplainConfig.from_json(d.get("explain", {}))})


def threads_per_process(threads: int, processes: int) -> int:
    """Torch threads for each of ``processes`` local processes: ``threads`` when given (> 0),
    else the cores shared out (at least 1) when there are several, else 0 (torch's default)."""
    if threads > 0:
        return threads
    if processes > 1:
        return max(1, (os.cpu_count() or 1) // processes)
    return 0


def launcher_world() -> tuple[int, int]:
    """``(rank, world_size)`` set by ``accelerate launch`` / ``torchrun`` / ``vlx batch
    --processes`` (``(0, 1)`` when run alone)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
