"""Region geometry: tight boxes and 3×3-grid position words, against hand-placed masks."""

from __future__ import annotations

import numpy as np
import pytest

from vlx.regions.geometry import COLS, ROWS, bbox_xyxy, position_words


def test_bbox_is_tight_end_exclusive_and_plain_ints():
    m = np.zeros((7, 9), bool)
    assert bbox_xyxy(m) == (0, 0, 0, 0)
    m[2, 3] = True
    assert bbox_xyxy(m) == (3, 2, 4, 3)
    m[5, 7] = True
    m[4, 1] = True
    box = bbox_xyxy(m)
    assert box == (1, 2, 8, 6) and all(type(c) is int for c in box)
    m[:] = True
    assert bbox_xyxy(m) == (0, 0, 9, 7)


def test_position_words_on_every_cell_and_at_the_thirds():
    assert ROWS == ("top", "centre", "bottom") and COLS == ("left", "centre", "right")
    for r in range(3):
        for c in range(3):
            m = np.zeros((9, 9), bool)
            m[3 * r + 1, 3 * c + 1] = True
            want = "centre" if (r, c) == (1, 1) else f"{ROWS[r]}-{COLS[c]}"
            assert position_words(m) == want
    m = np.zeros((6, 12), bool)
    m[2, 4] = True                                   # centroid exactly at 1/3 of each side: centre
    assert position_words(m) == "centre"
    m = np.zeros((6, 12), bool)
    m[1, 3] = True                                   # just below 1/3: top-left
    assert position_words(m) == "top-left"
    m = np.zeros((6, 12), bool)
    m[5, 11] = True                                  # the last pixel: bottom-right
    assert position_words(m) == "bottom-right"
    m = np.zeros((6, 12), bool)
    m[4, 8] = True                                   # exactly at 2/3: bottom-right
    assert position_words(m) == "bottom-right"
    m = np.zeros((6, 12), bool)
    m[3, 6] = True                                   # halfway down and across: still the middle third
    assert position_words(m) == "centre"
    m = np.zeros((6, 12), bool)
    m[0, 0] = m[5, 0] = True                         # centroid of two pixels: row 2.5 / 6
    assert position_words(m) == "centre-left"
    assert position_words(np.zeros((4, 4), bool)) == "centre"
    assert position_words(np.zeros((4, 4), bool), np.ones((4, 4))) == "centre"


def test_position_words_weighs_by_the_positive_part():
    m = np.ones((9, 9), bool)
    assert position_words(m) == "centre"
    w = np.zeros((9, 9))
    w[8, 8] = 1e-3                                   # a small weight still decides: zero weights add only 1e-12
    assert position_words(m, w) == "bottom-right"
    w[0, 0] = -5.0                                   # negative weights count as zero
    assert position_words(m, w) == "bottom-right"
    w = np.zeros((9, 9))
    assert position_words(m, w) == "centre"          # all-zero weights: the plain centroid, no division by 0
    w[0, :] = 1.0
    assert position_words(m, w) == "top-centre"
    half = np.zeros((9, 9), bool)
    half[:, :3] = True
    w = np.zeros((9, 9))
    w[:, 8] = 100.0                                  # weights outside the mask are not read
    w[0, 0] = 1.0
    assert position_words(half, w) == "top-left"
    with pytest.raises(ValueError):
        position_words(np.ones((2, 2, 2), bool))
