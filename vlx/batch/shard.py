"""One rank's part of a batch: explain its shard of the items into ``OUT/``, commit each item
atomically, and (on the coordinator) merge the rank journals and write the index. The layout of
``OUT/`` and the crash-safety rule are in the package docstring (``vlx/batch/__init__.py``).
"""

from __future__ import annotations

import os
import shutil
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from vlx.batch.journal import Journal, fsync_dir, read_jsonl, write_jsonl_atomic
from vlx.batch.items import BatchItem, check_path, shard
from vlx.batch.options import BatchOptions
from vlx.errors import InputError, VlxError

RESULTS, ERRORS = "results.jsonl", "errors.jsonl"
FAIL_FAST = 5     # abort when the first this-many attempted items all hit an internal (non-input) error


@dataclass
class BatchSummary:
    """Counts over the whole batch after a run, and what this process did in it."""

    out: Path
    total: int = 0
    done: int = 0
    failed: int = 0
    new: int = 0
    skipped: int = 0
    seconds: float = 0.0
    errors: list[dict[str, Any]] = field(default_factory=list)
    rank: int = 0
    launched: bool = False

    def to_json(self) -> dict[str, Any]:
        """The counts, the rate and the first errors (``vlx batch --json``)."""
        return {"out": str(self.out), "total": self.total, "done": self.done, "failed": self.failed, "new": self.new,
                "skipped": self.skipped, "seconds": round(self.seconds, 3),
                "rate_per_min": round(self.rate_per_min, 3), "errors": self.errors,
                "results": str(self.out / RESULTS), "index": str(self.out / "index.html")}

    @property
    def rate_per_min(self) -> float:
        return 60.0 * self.new / self.seconds if self.seconds > 0 else 0.0


def journal_names(rank: int, world_size: int) -> tuple[str, str]:
    """The results and errors journals a rank appends to."""
    if world_size == 1:
        return RESULTS, ERRORS
    return f"results-rank{rank}.jsonl", f"errors-rank{rank}.jsonl"


def finished_ids(out: Path) -> set[str]:
    """Ids with a committed results line in ``results.jsonl`` or any rank journal."""
    ids: set[str] = set()
    for p in [out / RESULTS, *sorted(out.glob("results-rank*.jsonl"))]:
        ids.update(str(r["id"]) for r in read_jsonl(p))
    return ids


Outcome = "tuple[Any, dict[str, Any]] | Exception"
ExplainFn = Callable[[list[BatchItem]], "list[Outcome]"]


def run_shard(items: list[BatchItem], out: Path, explain: ExplainFn, options: BatchOptions,
              rank: int = 0, world_size: int = 1, on_item: Callable[[bool], None] | None = None,
              debug: bool = False, chunk: int = 1) -> BatchSummary:
    """Explain this rank's unfinished items, ``chunk`` at a time: ``explain(items)`` returns, per
    item, ``(Explanation, extra fields for the results record)`` or the exception that item
    raised. Each item is then committed on its own, in order.

    ``on_item(ok)`` is called after each attempted item (for progress bars). Input problems
    (``VlxError``) are recorded in the errors journal and the run goes on; other exceptions are
    recorded with their traceback too, unless ``debug`` or the first items all fail that way."""
    mine = shard(items, rank, world_size)
    done = finished_ids(out)
    todo = [it for it in mine if it.id not in done]
    summary = BatchSummary(out, total=len(mine), skipped=len(mine) - len(todo))
    res_name, err_name = journal_names(rank, world_size)
    t0 = time.perf_counter()
    internal, attempted = 0, 0
    with Journal(out / res_name) as results, Journal(out / err_name) as errors:
        for at in range(0, len(todo), max(1, chunk)):
            group = todo[at:at + max(1, chunk)]
            start = time.perf_counter()
            outcomes = explain(group)
            each = (time.perf_counter() - start) / len(group)
            for it, outcome in zip(group, outcomes):
                attempted += 1
                start = time.perf_counter()
                try:
                    if isinstance(outcome, BaseException):
                        raise outcome
                    expl, extras = outcome
                    record = {**commit_item(it, expl, out, options), **extras}
                except VlxError as e:
                    if debug:
                        raise
                    errors.append(_error_record(it, e, rank))
                    ok = False
                except Exception as e:  # recorded with its traceback, never hidden; see FAIL_FAST
                    internal += 1
                    if debug or internal == attempted == FAIL_FAST:
                        raise
                    errors.append(_error_record(it, e, rank, traceback.format_exc()))
                    ok = False
                else:
                    record.update(seconds=round(each + time.perf_counter() - start, 4), rank=rank)
                    results.append(record)
                    summary.new += 1
                    ok = True
                if on_item is not None:
                    on_item(ok)
    summary.seconds = time.perf_counter() - t0
    return summary


def _error_record(item: BatchItem, e: BaseException, rank: int, tb: str | None = None) -> dict[str, Any]:
    text = (str(e).strip() or type(e).__name__).splitlines()[0]
    rec = {**item.to_json(), "error": text if isinstance(e, VlxError) else f"internal error: {type(e).__name__}: {text}",
           "kind": type(e).__name__, "rank": rank, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if tb:
        rec["traceback"] = tb
    return rec


def commit_item(item: BatchItem, expl: Any, out: Path, options: BatchOptions) -> dict[str, Any]:
    """Write an item's artefacts into ``items/<id>/`` atomically (staged folder + rename) and
    return its results record. Appending that record is the caller's commit."""
    from vlx.report import write_explanation, write_thumbnail

    items_dir = out / "items"
    final = items_dir / item.id
    stage = items_dir / f".tmp-{item.id}-{os.getpid()}"
    if stage.exists():
        shutil.rmtree(stage)
    write_explanation(expl, stage, options.explain.coverage)
    write_thumbnail(expl, stage / "thumb.jpg")
    if final.exists():                      # left by a run killed before its commit: not committed
        shutil.rmtree(final)
    os.rename(stage, final)
    fsync_dir(items_dir)
    return result_record(item, expl)


def result_record(item: BatchItem, expl: Any) -> dict[str, Any]:
    """The results line of an explained item (small; the full explanation is in the item folder)."""
    p = expl.prediction
    rec = {**item.to_json(), "label": expl.target.label, "class_index": expl.target.primary,
           "score": expl.target_score, "top1": {"label": p.labels[0], "index": p.indices[0], "score": p.scores[0]},
           "text": expl.verbalization.text, "verified": expl.verbalization.verified,
           "method": expl.attribution.method, "model": expl.model, "n_regions": len(expl.regions),
           "top_region_mass": expl.regions[0].attribution_mass if expl.regions else 0.0,
           "metrics": {m.name: m.value for m in expl.metrics},
           "report": f"items/{item.id}/report.html", "thumbnail": f"items/{item.id}/thumb.jpg"}
    return rec


def prepare(out: Path, world_size: int) -> None:
    """Before ranks start (coordinator only): clean staged folders of killed runs and fold rank
    journals of an earlier sharded run into ``results.jsonl`` / ``errors.jsonl``."""
    items_dir = out / "items"
    items_dir.mkdir(parents=True, exist_ok=True)
    for stale in items_dir.glob(".tmp-*"):
        shutil.rmtree(stale)
    merge(out)


def merge(out: Path, items: list[BatchItem] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Merge all journals into ``results.jsonl`` (one line per id, in input order) and
    ``errors.jsonl`` (the latest error of each id that has no result), then remove the rank
    journals. Only call it when no rank is running. Returns ``(results, errors)``."""
    res_files = sorted(out.glob("results-rank*.jsonl"))
    err_files = sorted(out.glob("errors-rank*.jsonl"))
    results: dict[str, dict[str, Any]] = {}
    for p in [out / RESULTS, *res_files]:
        for r in read_jsonl(p):
            results.setdefault(str(r["id"]), r)
    errors: dict[str, dict[str, Any]] = {}
    for p in [out / ERRORS, *err_files]:
        for r in sorted(read_jsonl(p), key=lambda r: r.get("time", "")):
            errors[str(r["id"])] = r
    order = {it.id: it.index for it in items} if items is not None else {}
    key = lambda r: (order.get(str(r["id"]), r.get("index", 0)), str(r["id"]))  # noqa: E731
    res = sorted(results.values(), key=key)
    err = sorted((e for i, e in errors.items() if i not in results), key=key)
    write_jsonl_atomic(out / RESULTS, res)
    write_jsonl_atomic(out / ERRORS, err)
    fsync_dir(out)
    for p in res_files + err_files:          # their lines are now durable in the merged files
        p.unlink()
    return res, err


def finalize(out: Path, items: list[BatchItem], title: str = "") -> BatchSummary:
    """Coordinator, after all ranks finished: merge the journals, write ``index.html``."""
    from vlx.report.index import write_index

    results, errors = merge(out, items)
    ids = {it.id for it in items}
    write_index(out, results, errors, title or f"Batch {out.resolve().name}")
    done = sum(1 for r in results if r["id"] in ids)
    failed = [e for e in errors if e["id"] in ids]
    return BatchSummary(out, total=len(items), done=done, failed=len(failed), errors=failed)


def make_explain_fn(explainer: Any, options: BatchOptions) -> ExplainFn:
    """``items -> [(Explanation, extras) or the item's exception]`` with an ``Explainer``: loads
    each image (one-line errors for bad files), explains the loaded ones together
    (``Explainer.explain_many``: one stacked pass) and adds ground-truth metrics where an item
    has them. When the stacked call fails, the items are explained one by one, so the failure is
    recorded on the item that caused it."""
    from vlx.batch.truth import with_ground_truth
    from vlx.image import load_image

    def target(item: BatchItem) -> int | str | None:
        return item.target if item.target is not None else options.target

    def explain(items: list[BatchItem]) -> list[Any]:
        outcomes: list[Any] = [None] * len(items)
        loaded = []
        for k, item in enumerate(items):
            try:
                if item.problem is not None:
                    raise InputError(item.problem)
                check_path(item.path)
                loaded.append((k, item, load_image(item.path, max_pixels=options.max_pixels)))
            except Exception as e:             # kept for run_shard, which records or raises it
                outcomes[k] = e
        expls = None
        if len(loaded) > 1:
            try:
                expls = explainer.explain_many([img for _, _, img in loaded], [target(it) for _, it, _ in loaded],
                                               options.contrast)
            except Exception:                  # not lost: the one-by-one pass below raises it on its item
                expls = None
        for n, (k, item, img) in enumerate(loaded):
            try:
                expl = expls[n] if expls is not None else explainer.explain(img, target(item), options.contrast)
                outcomes[k] = with_ground_truth(expl, item.ground_truth, explainer.model, Path(item.path).parent)
            except Exception as e:
                outcomes[k] = e
        return outcomes

    return explain


__all__ = ["BatchSummary", "run_shard", "commit_item", "result_record", "prepare", "merge", "finalize",
           "make_explain_fn", "finished_ids", "journal_names", "RESULTS", "ERRORS"]
