"""Progress bars of batch runs (rich, on stderr): done/total, rate in images per minute, ETA,
and the number of failed items. With ``--processes N`` the launching process draws one bar for
all ranks by counting the lines of their journals."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Images per minute over the recent samples."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed * 60:6.1f} img/min" if speed else "   -- img/min", style="cyan")


def _progress(console: Console | None = None) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                    TextColumn("[red]{task.fields[failed]} failed"), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=console or Console(stderr=True), transient=False)


@contextmanager
def rank_progress(enabled: bool, total: int, world_size: int = 1) -> Iterator[Callable[[bool], None] | None]:
    """A bar for this process's shard; yields the ``on_item(ok)`` callback (``None`` if disabled)."""
    if not enabled:
        yield None
        return
    label = "explaining" if world_size == 1 else f"rank 0 of {world_size}"
    with _progress() as progress:
        task = progress.add_task(label, total=total, failed=0)
        failed = 0

        def on_item(ok: bool) -> None:
            nonlocal failed
            failed += 0 if ok else 1
            progress.update(task, advance=1, failed=failed)

        yield on_item


class ParentProgress:
    """One bar for all ranks, fed by the number of lines in ``results-rank*`` / ``errors-rank*``."""

    def __init__(self, enabled: bool, total: int, out: Path) -> None:
        self.enabled, self.total, self.out = enabled, total, out
        self._progress = _progress() if enabled else None
        self._task: int | None = None
        self._seen, self._failed = 0, 0

    def __enter__(self) -> "ParentProgress":
        if self._progress is not None:
            self._progress.__enter__()
            self._task = self._progress.add_task("explaining", total=self.total, failed=0)
        return self

    def update(self) -> None:
        if self._progress is None:
            return
        done = sum(_lines(p) for p in self.out.glob("results-rank*.jsonl"))
        failed = sum(_lines(p) for p in self.out.glob("errors-rank*.jsonl"))
        if done + failed >= self._seen:        # the rank journals vanish when rank 0 merges them
            self._seen, self._failed = done + failed, failed
            self._progress.update(self._task, completed=done + failed, failed=failed)

    def finish(self) -> None:
        """All ranks succeeded: show the bar complete."""
        if self._progress is not None:
            self._progress.update(self._task, completed=self.total)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)


def _lines(p: Path) -> int:
    try:
        with open(p, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:      # merged and removed by rank 0 at the end
        return 0
