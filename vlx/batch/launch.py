"""Running a batch on one or many processes.

Under ``accelerate launch`` (or torchrun) every process runs the same ``vlx batch`` command;
``accelerate.PartialState`` gives its rank and world size and a barrier. ``vlx batch
--processes N`` starts N such processes itself on this machine, with the environment accelerate
would set (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), so both
ways run the same code; the processes it starts get the options as JSON (``vlx.batch.child``),
never a re-parsed command line. Rank 0 prepares the output folder before the others start and merges the
results after all have finished."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

from vlx.batch.items import discover, shard
from vlx.batch.options import BatchOptions, launcher_world, threads_per_process
from vlx.batch.progress import ParentProgress, rank_progress
from vlx.batch.shard import (ERRORS, RESULTS, BatchSummary, finalize, finished_ids, make_explain_fn, prepare,
                             run_shard)
from vlx.batch.journal import read_jsonl
from vlx.errors import UsageError, VlxError


class Group:
    """This process's place among the batch's processes (from accelerate's environment)."""

    def __init__(self) -> None:
        self.state: Any = None
        self.rank, self.world_size, self.local_rank = 0, 1, 0
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from accelerate import PartialState

            # The group only coordinates (barriers), so it always uses gloo over TCP (cpu=True): NCCL
            # would refuse two ranks on one GPU. Each rank picks its own device (build_explainer).
            # A long timeout: ranks may finish their shards hours apart on a big batch.
            self.state = PartialState(cpu=True, timeout=timedelta(days=7))
            self.rank, self.world_size = self.state.process_index, self.state.num_processes
            self.local_rank = self.state.local_process_index

    def barrier(self) -> None:
        """Wait for all ranks: an all-reduce of a CPU tensor over the gloo group. (Not
        ``torch.distributed.barrier``, which on a machine with GPUs guesses device ``rank`` and
        fails when there are more ranks than GPUs.)"""
        if self.state is not None:
            import torch
            import torch.distributed as dist

            dist.all_reduce(torch.zeros(1))

    def close(self) -> None:
        if self.state is not None:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def run_batch(source: str | Path, out: str | Path, options: BatchOptions | None = None, explainer: Any = None,
              processes: int = 1, progress: bool = False, debug: bool = False) -> BatchSummary:
    """Explain every item of a folder or manifest into ``out``, resumably (``vlx batch``).

    ``processes > 1`` starts that many local worker processes (each gets ``options`` as JSON);
    under ``accelerate launch`` / ``torchrun`` each process runs its shard and rank 0 merges.
    ``explainer``: an ``Explainer`` to use in this process (e.g. around a model object); built
    from ``options.explain`` when ``None``. Returns the summary of the whole batch (on rank 0; a
    rank's own counts elsewhere, with ``summary.rank`` set and ``summary.launched`` true when
    a launcher started this process)."""
    options = options or BatchOptions()
    rank, world = launcher_world()
    launched = os.environ.get("VLX_BATCH_CHILD") == "1" or world > 1
    if processes > 1 and world > 1:
        raise UsageError("--processes cannot be used under accelerate launch; let the launcher start the processes.")
    if processes > 1:
        if explainer is not None:
            raise UsageError("an explainer object cannot be shared with worker processes; pass options instead.")
        summary = launch(Path(source), Path(out), options, processes, progress)
    else:
        summary = run_distributed(Path(source), Path(out), options, explainer, progress, debug)
    summary.rank, summary.launched = rank, launched
    return summary


def run_distributed(source: Path, out: Path, options: BatchOptions, explainer: Any = None, progress: bool = False,
                    debug: bool = False) -> BatchSummary:
    """One process's part of a batch (all of it when alone); see ``run_batch``."""
    import torch

    group = Group()
    if options.threads > 0:                  # after the group: accelerate sets its own default
        torch.set_num_threads(options.threads)
    try:
        items = discover(source, exclude=out)
        out.mkdir(parents=True, exist_ok=True)
        with rank_lock(out, group.rank):
            if group.rank == 0:
                prepare(out, group.world_size)
            group.barrier()
            mine = shard(items, group.rank, group.world_size)
            pending = len(mine) - len(finished_ids(out) & {it.id for it in mine})
            if explainer is None and pending:       # nothing left to do: no need to load the model
                explainer = build_explainer(options, group)
            if explainer is not None:               # reports use the coverage the explainer cut regions with
                options = dataclasses.replace(options, explain=explainer.config)
            with rank_progress(progress and group.rank == 0, pending, group.world_size) as on_item:
                chunk = explainer.model.batch_size if explainer is not None else 1
                summary = run_shard(items, out, make_explain_fn(explainer, options), options, group.rank,
                                    group.world_size, on_item, debug, chunk)
            group.barrier()
            if group.rank != 0:
                return summary
            final = finalize(out, items)
            final.new, final.skipped, final.seconds = summary.new, summary.skipped, summary.seconds
            return final
    finally:
        group.close()


def build_explainer(options: BatchOptions, group: Group) -> Any:
    """An ``Explainer`` for ``options.explain``; with several processes on GPUs, each uses its own GPU."""
    import torch

    from vlx.pipeline import Explainer

    config = options.explain.check()
    if group.world_size > 1 and config.device in ("auto", "cuda") and torch.cuda.is_available():
        config = config.replace(device=f"cuda:{group.local_rank % torch.cuda.device_count()}")
    return Explainer(config)


@contextmanager
def rank_lock(out: Path, rank: int) -> Iterator[None]:
    """Refuse a second batch writing the same rank's journals into ``out`` at the same time."""
    path = out / f".lock-rank{rank}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"another vlx batch is writing to {out} (rank {rank}); wait for it or use another --out.") \
                from None
        yield
    finally:
        os.close(fd)


def launch(source: Path, out: Path, options: BatchOptions, processes: int, progress: bool = True) -> BatchSummary:
    """Run the batch on ``processes`` local processes (``vlx batch`` with accelerate's environment)
    and wait for them; a failed process stops the others. Returns the merged summary."""
    items = discover(source, exclude=out)
    out.mkdir(parents=True, exist_ok=True)
    with rank_lock(out, 0):                        # fold leftovers before any rank starts
        prepare(out, processes)
    before = len(finished_ids(out) & {it.id for it in items})
    todo = len(items) - before
    threads = threads_per_process(options.threads, processes)
    logs = out / ".logs"
    logs.mkdir(exist_ok=True)
    spec = logs / "options.json"
    spec.write_text(json.dumps(dataclasses.replace(options, threads=threads).to_json()), encoding="utf-8")
    port = _free_port()
    cmd = [sys.executable, "-m", "vlx.batch.child", str(source), str(out), str(spec)]
    procs: list[subprocess.Popen] = []
    t0 = time.perf_counter()
    try:
        for r in range(processes):
            env = {**os.environ, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": str(processes),
                   "LOCAL_WORLD_SIZE": str(processes), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                   "OMP_NUM_THREADS": str(threads), "VLX_BATCH_CHILD": "1"}
            with open(logs / f"rank{r}.log", "wb") as log:
                procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                              preexec_fn=_die_with_parent))
        with ParentProgress(progress, todo, out) as bar:
            failed = _wait(procs, bar, logs)
            if failed is None:
                bar.finish()
    finally:
        for p in procs:                            # only the processes started above, by their pid
            if p.poll() is None:
                p.terminate()
        for p in procs:
            p.wait()
    if failed is not None:
        raise VlxError(failed)
    summary = _read_summary(out, items)
    summary.seconds, summary.skipped, summary.new = time.perf_counter() - t0, before, summary.done - before
    return summary


def _wait(procs: list[subprocess.Popen], bar: ParentProgress, logs: Path) -> str | None:
    while True:
        codes = [p.poll() for p in procs]
        bar.update()
        for r, c in enumerate(codes):
            if c is not None and c != 0:
                tail = [l for l in (logs / f"rank{r}.log").read_text(errors="replace").splitlines() if l.strip()]
                return f"process {r} of {len(procs)} failed (exit {c}): {tail[-1] if tail else 'no output'} " \
                       f"(log: {logs / f'rank{r}.log'}); finished items are kept, rerun to resume."
        if all(c == 0 for c in codes):
            return None
        time.sleep(0.3)


def _read_summary(out: Path, items: list) -> BatchSummary:
    ids = {it.id for it in items}
    results = [r for r in read_jsonl(out / RESULTS) if r["id"] in ids]
    errors = [e for e in read_jsonl(out / ERRORS) if e["id"] in ids]
    return BatchSummary(out, total=len(items), done=len(results), failed=len(errors), new=0, errors=errors)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In a child: get SIGTERM when the launching process dies (Linux), so no orphan keeps going."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
