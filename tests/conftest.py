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
