"""Batch runs: explain every item of a folder or manifest into ``OUT/``, resumably, on one process
or sharded over many (``accelerate launch`` or ``vlx batch --processes N``).

Layout of ``OUT/``::

    results.jsonl          one line per finished item (merged from results-rank*.jsonl when sharded)
    errors.jsonl           one line per failed item, with the reason
    items/<id>/            report.html, explanation.json, map.npy, thumb.jpg of each finished item
    index.html             a sortable table of all items, with thumbnails and links to the reports

Crash safety: an item's folder is written under ``items/.tmp-*`` and renamed into place, then
its results line is appended (line-atomic, fsynced): that line is the commit point. A rerun
skips ids that have a results line, redoes the rest (a folder without a line is replaced), and
retries failed items. Item ``i`` of the input goes to rank ``i % world_size``.

Modules: ``items`` (discovery, ids, sharding), ``journal`` (crash-safe JSONL), ``options``
(``BatchOptions``: the shared ``ExplainConfig`` plus batch options; threads per process),
``shard`` (one rank's run, commit, merge, index), ``launch`` (process groups, local workers,
``run_batch``), ``child`` (a worker's entry point), ``progress`` (bars), ``truth`` (ground
truth of manifest items).
"""

from __future__ import annotations

from pathlib import Path

from vlx.batch.items import BatchItem, discover
from vlx.batch.launch import run_batch
from vlx.batch.options import BatchOptions
from vlx.batch.shard import BatchSummary, commit_item, finalize, merge, run_shard


def discover_items(source: str | Path, out: str | Path | None = None) -> list[BatchItem]:
    """The items of ``source`` (folder or manifest), leaving ``out`` out of a folder scan."""
    return discover(source, exclude=out)


__all__ = ["BatchOptions", "BatchSummary", "BatchItem", "run_batch", "discover_items", "merge", "finalize",
           "run_shard", "commit_item"]
