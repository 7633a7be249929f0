"""Crash-safe files for batch runs: JSONL journals whose appends are line-atomic and durable
(one ``write`` of one whole line, then ``fsync``), and readers that ignore a trailing partial line
(a line without its newline was never committed: the writer died in the middle of it).

The commit protocol of a batch item: write its artefacts (atomically), then append its line to
the journal. A line in a journal is therefore the proof that the item is complete."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from vlx.errors import VlxError


class JournalError(VlxError):
    """A journal line that is complete but not valid JSON: the file was edited or damaged."""


class Journal:
    """An append-only JSONL file owned by one process.

    Opening it truncates a trailing partial line left by a killed writer, so the next append
    starts on a fresh line. ``append`` writes one line with a single ``os.write`` on an
    ``O_APPEND`` descriptor and ``fsync``s it before returning: once ``append`` returns, the line
    survives a kill of the process (and a power cut, on file systems that honour ``fsync``).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_tail(self.path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one JSON line and make it durable."""
        line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        written = os.write(self._fd, line)
        if written != len(line):          # a short write: finish the line so it is never half there
            view = memoryview(line)[written:]
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def repair_tail(path: Path) -> int:
    """Cut a trailing partial line (no final newline) off ``path``; returns the bytes removed.
    Only the owner of a journal may call this (it rewrites the end of the file)."""
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as f:
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        # scan back for the last newline, in chunks
        pos, keep = size, 0
        while pos > 0:
            step = min(65536, pos)
            pos -= step
            f.seek(pos)
            chunk = f.read(step)
            i = chunk.rfind(b"\n")
            if i >= 0:
                keep = pos + i + 1
                break
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return size - keep


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The committed records of a journal, in order. A trailing line without its newline is
    ignored (uncommitted); a complete line that is not a JSON object raises ``JournalError``."""
    p = Path(path)
    if not p.exists():
        return []
    records = []
    data = p.read_bytes()
    lines = data.split(b"\n")
    for n, raw in enumerate(lines[:-1], 1):     # the last element is "" or an uncommitted tail
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError as e:
            raise JournalError(f"{p}:{n}: damaged line ({e.msg}); remove that line and rerun to redo the item.") from e
        if not isinstance(rec, dict):
            raise JournalError(f"{p}:{n}: expected a JSON object; remove that line and rerun.")
        records.append(rec)
    return records


def write_jsonl_atomic(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    """Replace ``path`` with ``records`` as JSONL, atomically and durably."""
    from vlx.report.writer import atomic_write

    body = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
    atomic_write(Path(path), body.encode("utf-8"))


def fsync_dir(path: str | Path) -> None:
    """Make a rename or a new entry in folder ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
