"""Offline-friendly loading from the Hugging Face hub or a local folder: try the local cache
first, go online only when the hub host resolves, and fail in one clear line otherwise."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Callable, TypeVar
from urllib.parse import urlparse

from vlx.errors import ModelNotAvailable

T = TypeVar("T")


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the hub host resolves (``HF_HUB_OFFLINE=1`` means no)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        socket.getaddrinfo(host, 443)
        return True
    except OSError:
        return False
    finally:
        socket.setdefaulttimeout(old)


def from_pretrained(loader: Callable[..., T], ref: str, what: str, **kwargs: Any) -> T:
    """Call ``loader(ref, **kwargs)`` (a ``from_pretrained``) for a local path or hub id.

    A local folder loads directly. A hub id is tried from the local cache, then from the hub
    if it is reachable; otherwise ``ModelNotAvailable`` says to pass a local path.
    """
    if Path(ref).expanduser().exists():
        return loader(str(Path(ref).expanduser()), **kwargs)
    if ref.startswith((".", "/", "~")) or os.sep in ref.strip("/").replace("/", "", 1):
        raise ModelNotAvailable(f"{what} {ref!r}: no such local folder; check the path.")
    try:
        return loader(ref, local_files_only=True, **kwargs)
    except OSError:
        if not hub_reachable():
            raise ModelNotAvailable(
                f"{what} {ref!r} is not on this machine and the hub is unreachable; "
                "pass a local path (a folder saved with save_pretrained)."
            ) from None
    try:
        return loader(ref, **kwargs)
    except OSError as e:
        raise ModelNotAvailable(f"{what} {ref!r} could not be loaded from the hub: {str(e).splitlines()[0]}") from e
