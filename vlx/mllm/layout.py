"""Where image tokens come from: a layout maps a vector of per-token values back onto the image.

A model sees the image as one or more *tiles* (LLaVA-1.5: one padded square; LLaVA-NeXT: the
base view plus the any-resolution grid, with a newline token after each row; Qwen2-VL: one
dynamic-resolution grid of 2×2-merged patches; Idefics3 / SmolVLM: row × column crops plus a
global view). Each tile is a grid of token indices and the box of the original image that the
whole grid covers (its *canvas*; it may extend past the image where the model padded it).

Coordinates: boxes are ``(x0, y0, x1, y1)`` in original-image pixels (floats, ``x1``/``y1``
exclusive); grids are row-major ``(rows, cols)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Tile:
    """One grid of tokens over one box of the image.

    Attributes:
        index: int array ``(rows, cols)``: the position of each grid cell in the value vector
            (``0..N-1``; ``-1`` for a cell without a token).
        canvas_xyxy: the box of the original image (pixels, floats, XYXY) that the whole grid
            covers; cells outside the image are dropped when mapping.
        name: a short label ("base", "crop r1c2", "global").
    """

    index: np.ndarray
    canvas_xyxy: tuple[float, float, float, float]
    name: str = "view"

    @property
    def grid_hw(self) -> tuple[int, int]:
        return int(self.index.shape[0]), int(self.index.shape[1])


@dataclass(frozen=True)
class ImageLayout:
    """How a vector of ``n`` values (one per image token, or per pixel cell) lies on an image of
    ``size_hw = (H, W)``. Tiles that overlap (a global view and its crops) are averaged."""

    size_hw: tuple[int, int]
    tiles: tuple[Tile, ...]
    n: int

    def grids(self, values: np.ndarray | torch.Tensor) -> list[np.ndarray]:
        """Per-tile float32 grids ``(rows, cols)`` of ``values`` (shape ``(n,)``); cells without
        a token are 0."""
        v = _numpy(values)
        if v.shape != (self.n,):
            raise ValueError(f"layout expects {self.n} values, got shape {v.shape}")
        out = []
        for t in self.tiles:
            g = np.where(t.index >= 0, v[np.clip(t.index, 0, None)], 0.0)
            out.append(g.astype(np.float32))
        return out

    def to_image(self, values: np.ndarray | torch.Tensor, mode: str = "bilinear",
                 grids: list[np.ndarray] | None = None) -> np.ndarray:
        """Map ``values`` ``(n,)`` (or ready per-tile ``grids``) to a float32 ``(H, W)`` map.

        ``mode``: ``bilinear`` (smooth) or ``nearest`` (each token fills its own cell exactly).
        A pixel covered by several tiles gets their mean; a pixel covered by none gets 0.
        """
        h, w = self.size_hw
        grids = self.grids(values) if grids is None else grids
        total = torch.zeros(h, w)
        count = torch.zeros(h, w)
        ys = torch.arange(h, dtype=torch.float64) + 0.5
        xs = torch.arange(w, dtype=torch.float64) + 0.5
        for tile, g in zip(self.tiles, grids):
            x0, y0, x1, y1 = tile.canvas_xyxy
            ny = (ys - y0) / (y1 - y0) * 2 - 1
            nx = (xs - x0) / (x1 - x0) * 2 - 1
            iy = (ny >= -1) & (ny <= 1)
            ix = (nx >= -1) & (nx <= 1)
            if not (iy.any() and ix.any()):
                continue
            gy, gx = torch.meshgrid(ny[iy], nx[ix], indexing="ij")
            coords = torch.stack([gx, gy], -1)[None].float()
            sampled = F.grid_sample(torch.from_numpy(g)[None, None], coords, mode=mode, padding_mode="border",
                                    align_corners=False)[0, 0]
            rows, cols = torch.nonzero(iy)[:, 0], torch.nonzero(ix)[:, 0]
            total[rows[:, None], cols[None, :]] += sampled
            count[rows[:, None], cols[None, :]] += 1
        return (total / count.clamp(min=1)).numpy().astype(np.float32)

    def cell_boxes(self) -> list[tuple[int, str, tuple[float, float, float, float]]]:
        """``(value index, tile name, box XYXY in image pixels)`` for every grid cell, for tests
        and for reports that outline a token's footprint."""
        out = []
        for t in self.tiles:
            x0, y0, x1, y1 = t.canvas_xyxy
            rows, cols = t.grid_hw
            ch, cw = (y1 - y0) / rows, (x1 - x0) / cols
            for r in range(rows):
                for c in range(cols):
                    if t.index[r, c] >= 0:
                        out.append((int(t.index[r, c]), t.name, (x0 + c * cw, y0 + r * ch, x0 + (c + 1) * cw,
                                                                 y0 + (r + 1) * ch)))
        return out


def single_grid(size_hw: tuple[int, int], grid_hw: tuple[int, int],
                canvas_xyxy: tuple[float, float, float, float] | None = None, offset: int = 0,
                name: str = "view") -> Tile:
    """A row-major tile of ``grid_hw`` tokens numbered from ``offset``, covering ``canvas_xyxy``
    (default: the whole image of ``size_hw``)."""
    h, w = size_hw
    idx = np.arange(grid_hw[0] * grid_hw[1]).reshape(grid_hw) + offset
    return Tile(idx, canvas_xyxy or (0.0, 0.0, float(w), float(h)), name)


def square_pad_box(size_hw: tuple[int, int]) -> tuple[float, float, float, float]:
    """The box, in image pixels, of the square canvas an image is centred on when padded to a
    square (LLaVA-1.5's ``expand2square``)."""
    h, w = size_hw
    s = max(h, w)
    return (-float((s - w) // 2), -float((s - h) // 2), float(s - (s - w) // 2), float(s - (s - h) // 2))


def _numpy(values: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=np.float32)
