"""``vlx explain`` on files: load each image, explain them in stacks (``Explainer.explain_many``),
and write ``OUT/<image stem>/{report.html, explanation.json, map.npy}``. A bad image is
reported and the rest go on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from vlx.config import ExplainConfig
from vlx.errors import VlxError


@dataclass
class FileResult:
    """One input file: its explanation JSON and report folder, or the one-line error."""

    path: Path
    folder: Path | None = None
    explanation: dict[str, Any] | None = None
    text: str = ""
    error: str | None = None


@dataclass
class FilesResult:
    """All files of a run, in input order."""

    items: list[FileResult] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(1 for i in self.items if i.error is not None)

    def to_json(self) -> Any:
        """The explanation JSON of one image, or a list for several (failed ones omitted)."""
        done = [i.explanation for i in self.items if i.explanation is not None]
        return done[0] if len(self.items) == 1 and done else done


def explain_files(paths: Sequence[str | Path], out_dir: str | Path = "vlx-out", config: ExplainConfig | None = None,
                  target: int | str | None = None, contrast: int | str | None = None, max_pixels: int = 80_000_000,
                  explainer: Any = None, strict: bool = False,
                  on_item: Callable[[FileResult], None] | None = None) -> FilesResult:
    """Explain each image file into ``out_dir/<stem>/`` (a second file with the same stem gets
    ``<stem>_2``). Images are loaded one by one and explained in stacks of the model's batch
    size. ``strict`` (or a single file) raises the first ``VlxError``; otherwise it is
    recorded on the item and the rest go on. ``on_item`` is called after each file."""
    from vlx.image import load_image
    from vlx.pipeline import Explainer
    from vlx.report import write_explanation

    explainer = explainer or Explainer(config or ExplainConfig())
    for cls in (target, contrast):
        if cls is not None:
            explainer.model.class_index(cls)
    strict = strict or len(paths) == 1
    out, used = Path(out_dir), set()
    result = FilesResult([FileResult(Path(p)) for p in paths])
    chunk = max(1, explainer.model.batch_size)
    for start in range(0, len(paths), chunk):
        loaded = []
        for item in result.items[start:start + chunk]:
            try:
                loaded.append((item, load_image(item.path, max_pixels=max_pixels)))
            except VlxError as e:
                _fail(item, e, strict, on_item)
        if not loaded:
            continue
        try:
            expls = explainer.explain_many([img for _, img in loaded], target, contrast)
        except VlxError:
            if strict or len(loaded) == 1:
                raise
            expls = None                       # find the image at fault: one by one
        for n, (item, img) in enumerate(loaded):
            try:
                expl = expls[n] if expls is not None else explainer.explain(img, target, contrast)
                item.folder = out / _unique(img.id, used)
                write_explanation(expl, item.folder, explainer.config.coverage)
            except VlxError as e:
                _fail(item, e, strict, on_item)
                continue
            item.explanation, item.text = expl.to_json(), expl.verbalization.text
            if on_item is not None:
                on_item(item)
    return result


def _fail(item: FileResult, e: VlxError, strict: bool, on_item: Callable[[FileResult], None] | None) -> None:
    if strict:
        raise e
    item.error = (str(e).strip() or type(e).__name__).splitlines()[0]
    if on_item is not None:
        on_item(item)


def _unique(stem: str, used: set[str]) -> str:
    name, n = stem, 2
    while name in used:
        name, n = f"{stem}_{n}", n + 1
    used.add(name)
    return name
