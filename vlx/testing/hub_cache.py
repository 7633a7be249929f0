"""Put a folder into a Hugging Face hub cache under a repository id, in the layout
``hf download <id>`` (formerly ``huggingface-cli download``) leaves: ``HF_HOME/hub/
models--org--name/`` with ``blobs/`` named by their ETag, ``snapshots/<commit>/`` of relative
symlinks into ``blobs/`` and ``refs/main`` holding the commit; so hub ids load offline
(``HF_HUB_OFFLINE=1``) exactly as on a user's machine. huggingface_hub has no public API to
write a cache entry; the folder name comes from its ``repo_folder_name`` and tests check the
result with its own readers (``scan_cache_dir``, ``try_to_load_from_cache``)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# Files the hub stores with Git LFS: their ETag (and blob name) is the SHA-256 of the content;
# other files' is the git blob SHA-1.
LFS_SUFFIXES = (".safetensors", ".bin", ".h5", ".msgpack", ".model", ".gguf", ".pth")


def blob_etag(name: str, data: bytes) -> str:
    """The hub's ETag for a file: SHA-256 for LFS files, git's blob SHA-1 otherwise."""
    if name.endswith(LFS_SUFFIXES):
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def put_in_cache(folder: str | Path, repo_id: str, hub_cache: str | Path, revision: str | None = None) -> Path:
    """Copy every file under ``folder`` into ``hub_cache`` (``HF_HOME/hub``) as repository
    ``repo_id`` at commit ``revision`` (default: a SHA-1 of the contents) and point ``refs/main``
    at it; returns the snapshot folder."""
    from huggingface_hub.file_download import repo_folder_name

    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if not files:
        raise ValueError(f"{folder} holds no files")
    storage = Path(hub_cache) / repo_folder_name(repo_id=repo_id, repo_type="model")
    tags = {p: blob_etag(p.name, p.read_bytes()) for p in files}
    if revision is None:
        revision = hashlib.sha1("".join(f"{p.relative_to(folder)}:{t}" for p, t in tags.items()).encode()).hexdigest()
    snapshot = storage / "snapshots" / revision
    (storage / "blobs").mkdir(parents=True, exist_ok=True)
    for p, tag in tags.items():
        blob = storage / "blobs" / tag
        if not blob.exists():
            blob.write_bytes(p.read_bytes())
        link = snapshot / p.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(os.path.relpath(blob, link.parent))
    (storage / "refs").mkdir(exist_ok=True)
    (storage / "refs" / "main").write_text(revision)
    return snapshot
