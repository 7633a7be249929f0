"""Loading from a local folder or a Hugging Face hub id through the libraries' own
``from_pretrained``: a folder that exists loads directly (never as a hub id), a hub id loads
from the local cache first (``HF_HOME``; what ``hf download <id>`` fills), then
from the hub only when it is reachable. Every failure is one line that names the missing file
or says what to do; the library's exception is kept as the cause (``--debug`` shows it)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar
from urllib.parse import urlparse

from vlx.errors import ModelNotAvailable, UsageError, VlxError

T = TypeVar("T")

# Files a loader needs: each group is satisfied by any one of its names (the library's names).
CONFIG_FILES = ("config.json",)
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt", "tokenizer.model")
# Today's transformers nests the image processor in processor_config.json; older ones (and most
# hub repositories) hold preprocessor_config.json.
IMAGE_PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the hub host resolves (``HF_HUB_OFFLINE=1`` means no)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
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


def local_folder(ref: str) -> Path | None:
    """``ref`` as an existing local path, or ``None`` when it names none. A ref that looks like a
    path (starts with ``.``, ``/`` or ``~``, or has more than one ``/``) but does not exist raises
    ``ModelNotAvailable``: it is never sent to the hub as an id."""
    path = Path(ref).expanduser()
    if path.exists():
        return path
    if ref.startswith((".", "/", "~")) or ref.strip("/").count("/") > 1 or os.sep != "/" and os.sep in ref:
        raise ModelNotAvailable(f"{ref!r}: no such local folder; check the path (a hub id is 'org/name').")
    return None


def display_name(ref: str) -> str:
    """The folder's name for a local path, else the hub id itself."""
    path = Path(ref).expanduser()
    return path.name if path.exists() else ref


def from_pretrained(loader: Callable[..., T], ref: str, what: str, needs: Sequence[Sequence[str]] = (),
                    **kwargs: Any) -> T:
    """``loader(ref, **kwargs)`` (a library ``from_pretrained``) for a local folder or a hub id.

    ``needs``: groups of file names the loader reads, each satisfied by any one name; a folder
    (or a cached repository) that lacks a group gets a one-line ``ModelNotAvailable`` naming the
    file. Library errors become one-line vlx errors with the library's exception as their
    cause (see ``_call``).
    """
    path = local_folder(ref)
    if path is not None:
        if not path.is_dir():
            raise ModelNotAvailable(f"{what} {ref!r} is a file; pass the folder that holds config.json "
                                    "(saved with save_pretrained).")
        for group in needs:
            if not any((path / name).is_file() for name in group):
                raise ModelNotAvailable(f"{what} folder {ref!r} has no {_names(group)}; save it with "
                                        "save_pretrained (model and processor) or copy the file from its repository.")
        return _call(loader, str(path), ref, what, **kwargs)
    cached = _cached_files(ref, needs)
    if cached is not None:
        try:
            return _call(loader, ref, ref, what, local_files_only=True, **kwargs)
        except ModelNotAvailable:
            if not hub_reachable():
                raise
    if not hub_reachable():
        raise ModelNotAvailable(_not_cached(ref, what, needs))
    return _call(loader, ref, ref, what, **kwargs)


def _cached_files(ref: str, needs: Sequence[Sequence[str]]) -> bool | None:
    """``True`` when every group has a file in the local cache, ``None`` when one has not
    (or the repository is not cached at all)."""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        groups = list(needs) or [CONFIG_FILES]
        ok = all(any(isinstance(try_to_load_from_cache(ref, name), str) for name in group) for group in groups)
    except HFValidationError as e:
        raise UsageError(f"{ref!r} is neither a local folder nor a hub id ('org/name'): {_first_line(e)}") from e
    return True if ok else None


def _not_cached(ref: str, what: str, needs: Sequence[Sequence[str]]) -> str:
    from huggingface_hub import constants, try_to_load_from_cache

    missing = [g for g in needs if not any(isinstance(try_to_load_from_cache(ref, n), str) for n in g)]
    has_repo = isinstance(try_to_load_from_cache(ref, CONFIG_FILES[0]), str)
    cache = constants.HF_HUB_CACHE
    if has_repo and missing:
        state = f"is cached in {cache} without {_names(missing[0])}"
    else:
        state = f"is not on this machine (not in the Hugging Face cache {cache})"
    return (f"{what} {ref!r} {state} and the hub is unreachable (offline); on a machine with internet run "
            f"`hf download {ref}` (`huggingface-cli download` with older huggingface_hub) and copy the cache "
            "here, or pass a local folder.")


def _call(loader: Callable[..., T], target: str, ref: str, what: str, **kwargs: Any) -> T:
    """The library call, its failures as one-line vlx errors (the cause kept): a missing
    package, or a config the library cannot read (``ValueError``, ``KeyError``: e.g. an unknown
    ``model_type``) → ``UsageError``; a missing or unreadable file (``OSError``) →
    ``ModelNotAvailable``; anything else the library raises (a corrupt or truncated safetensors
    file, weights that do not fit the config) → ``ModelNotAvailable`` naming the exception type."""
    try:
        return loader(target, **kwargs)
    except VlxError:
        raise
    except ImportError as e:
        raise UsageError(f"{what} {ref!r} needs a package that is missing: {_first_line(e)}") from e
    except OSError as e:
        raise ModelNotAvailable(f"{what} {ref!r} could not be loaded: {_first_line(e)}") from e
    except (ValueError, KeyError) as e:  # e.g. a model_type this transformers does not know
        raise UsageError(f"{what} {ref!r} could not be loaded: {type(e).__name__}: {_first_line(e)}") from e
    except Exception as e:  # the library's own error types (SafetensorError, RuntimeError, ...)
        raise ModelNotAvailable(f"{what} {ref!r} could not be loaded: {type(e).__name__}: {_first_line(e)}") from e


def _names(group: Sequence[str]) -> str:
    return " or ".join(group)


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__
