"""The items of a batch: a folder scanned recursively for image files, or a JSONL manifest
(``{"path": ..., "target": ..., "ground_truth": ..., "id": ...}`` per line).

Every item gets a stable, unique, file-system-safe id (derived from its path and target), so a
rerun finds the same ids and skips what is done. A manifest line that cannot be used becomes an
item with a ``problem``: it is recorded as an error, and the rest go on."""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlx.errors import InputError, UsageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".dib", ".gif", ".tif", ".tiff",
                              ".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".jp2", ".j2k", ".ico", ".sgi"})
MANIFEST_EXTENSIONS = frozenset({".jsonl", ".ndjson"})


@dataclass(frozen=True)
class BatchItem:
    """One unit of work. ``index``: position in the input (drives sharding: rank ``index %
    world_size``); ``id``: unique folder name under ``items/``; ``problem``: why the manifest line
    is unusable (then ``path`` may be empty)."""

    index: int
    id: str
    path: str
    target: int | str | None = None
    ground_truth: Any = None
    problem: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.id, "path": self.path, "target": self.target,
                "ground_truth": self.ground_truth}


def discover(source: str | Path, exclude: str | Path | None = None) -> list[BatchItem]:
    """The items of a folder (recursive, image files only, sorted) or of a JSONL manifest.

    ``exclude``: a folder to leave out of a scan (the batch's own output folder)."""
    src = Path(source)
    if src.is_dir():
        return _from_folder(src, Path(exclude) if exclude else None)
    if not src.exists():
        raise InputError(f"{src}: no such folder or manifest; pass a folder of images or a .jsonl manifest.")
    if src.suffix.lower() in MANIFEST_EXTENSIONS:
        return _from_manifest(src)
    raise UsageError(f"{src}: batch input must be a folder of images or a JSONL manifest (.jsonl) with one "
                     '{"path": ...} per line; for single images use `vlx explain`.')


def shard(items: list[BatchItem], rank: int, world_size: int) -> list[BatchItem]:
    """The items of ``rank``: those with ``index % world_size == rank`` (deterministic)."""
    return [it for it in items if it.index % world_size == rank]


def _from_folder(root: Path, exclude: Path | None) -> list[BatchItem]:
    skip = _real(exclude) if exclude is not None and exclude.exists() else None
    seen_dirs: set[tuple[int, int]] = set()
    rels: list[str] = []
    unlisted: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=unlisted.append):
        st = os.stat(dirpath)
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs or (skip is not None and _real(Path(dirpath)) == skip):
            dirnames[:] = []           # a symlink loop or the output folder: do not descend
            continue
        seen_dirs.add(key)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and _dir_ok(Path(dirpath) / d))
        for f in filenames:
            if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS:
                rels.append(os.path.relpath(os.path.join(dirpath, f), root))
    rels.sort()
    items = [BatchItem(i, item_id(Path(r).stem, r), str(root / r)) for i, r in enumerate(rels)]
    for e in unlisted:                 # a folder that cannot be listed is an error item; the rest go on
        rel = os.path.relpath(str(e.filename), root)
        items.append(BatchItem(len(items), item_id(Path(rel).name, "dir:" + rel), str(e.filename),
                               problem=f"{e.filename}: cannot list the folder ({e.strerror}); fix its permissions."))
    return _dedup(items)


def _dir_ok(p: Path) -> bool:
    """Follow a symlinked folder only when it resolves (``is_dir`` is False for a dangling link
    or a link loop; folders reached twice are cut by the inode check in the walk)."""
    return p.is_dir()


def _real(p: Path) -> tuple[int, int]:
    st = os.stat(p)
    return st.st_dev, st.st_ino


def _from_manifest(path: Path) -> list[BatchItem]:
    base = path.parent
    items: list[BatchItem] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            items.append(_manifest_item(len(items), n, line, base, path.name))
    return _dedup(items)


def _manifest_item(index: int, lineno: int, line: str, base: Path, name: str) -> BatchItem:
    where = f"{name} line {lineno}"
    bad_id = item_id(f"line{lineno}", f"{name}:{lineno}:{line}")
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as e:
        return BatchItem(index, bad_id, "", problem=f"{where}: not valid JSON ({e.msg}).")
    if not isinstance(rec, dict) or not isinstance(rec.get("path"), str) or not rec["path"]:
        return BatchItem(index, bad_id, "", problem=f'{where}: expected an object with a "path" string.')
    target = rec.get("target")
    if target is not None and (isinstance(target, bool) or not isinstance(target, (int, str))):
        return BatchItem(index, bad_id, rec["path"], problem=f"{where}: target must be a class index or name.")
    p = Path(rec["path"])
    full = p if p.is_absolute() else base / p
    given = rec.get("id")
    key = f"{rec['path']}|{json.dumps(target)}"
    uid = item_id(str(given), key) if given is not None else item_id(p.stem, key)
    return BatchItem(index, uid, str(full), target, rec.get("ground_truth"))


def item_id(stem: str, key: str) -> str:
    """``<ascii slug of stem>-<8 hex of sha1(key)>``: stable, unique per key, safe in paths and URLs."""
    slug = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", slug).strip("._-")[:48] or "item"
    return f"{slug}-{hashlib.sha1(key.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def _dedup(items: list[BatchItem]) -> list[BatchItem]:
    """Keep the first item of each id (a manifest may list the same path and target twice)."""
    seen: set[str] = set()
    out = []
    for it in items:
        if it.id not in seen:
            seen.add(it.id)
            out.append(it)
    return out


def check_path(path: str) -> None:
    """Raise a one-line ``InputError`` for a dangling symlink or a symlink loop, which
    ``load_image`` would report as a missing file."""
    p = Path(path)
    if p.is_symlink():
        try:
            p.resolve(strict=True)
        except RuntimeError as e:
            raise InputError(f"{p}: symlink loop; point the link at an image file.") from e
        except OSError as e:
            kind = "symlink loop" if getattr(e, "errno", None) == 40 else "dangling symlink"
            raise InputError(f"{p}: {kind}; point the link at an image file.") from e
