"""Shared fixtures: the real embedded classifier (loaded once), tiny models from configs, and
files of every kind of bad and odd image."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # tests never reach a hub, whatever the caller set


@pytest.fixture(scope="session")
def effnet():
    from vlx.models import load_classifier

    return load_classifier("effnet-lite0", "cpu")


@pytest.fixture(scope="session")
def chelsea():
    from skimage import data

    from vlx.image import from_array

    return from_array(data.chelsea(), id="chelsea")


@pytest.fixture(scope="session")
def tiny_vit_dir(tmp_path_factory):
    from vlx.testing import tiny_vit_folder

    return tiny_vit_folder(tmp_path_factory.mktemp("tiny-vit"))


@pytest.fixture(scope="session")
def tiny_deit_dir(tmp_path_factory):
    from vlx.testing import tiny_vit_folder

    return tiny_vit_folder(tmp_path_factory.mktemp("tiny-deit"), model_type="deit")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def unprivileged(tmp_path_factory):
    """Run a command as a user that file permissions apply to, for tests of unreadable files.

    Returns ``(run, folder)``: ``run(argv) -> CompletedProcess`` (text, captured) and a fresh
    world-traversable folder under the system temp dir for the test's files. As root (CI),
    ``run`` drops to ``nobody``/``nogroup`` with ``setpriv`` (or ``runuser``), since root reads
    any file; as any other user it runs the command as is. ``HOME`` points into the folder so
    nothing tries to write to root's home. Skips where neither tool exists."""
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="vlx-perm-"))
    folder.chmod(0o777)
    (folder / "home").mkdir(mode=0o777)
    (folder / "home").chmod(0o777)
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv"):
            prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        elif shutil.which("runuser"):
            prefix = ["runuser", "-u", "nobody", "--"]
        else:
            pytest.skip("running as root without setpriv or runuser: cannot drop privileges to test permissions")
    env = {**os.environ, "HOME": str(folder / "home"), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(p for p in [str(Path(__file__).resolve().parents[1]),
                                                     os.environ.get("PYTHONPATH", "")] if p)}

    def run(argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(prefix + list(argv), capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=folder)

    probe = run([sys.executable, "-c", "import vlx"])
    if probe.returncode != 0:
        pytest.skip(f"the unprivileged user cannot run this Python and vlx: {probe.stderr.strip()[-200:]}")
    yield run, folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``): the
    perturbation tests run many small batches, whose sums then reduce in one fixed order."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
