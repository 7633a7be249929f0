"""Few-shot segmentation explanation: the embedded matching segmenter segments planted objects,
the Affinity Explainer finds the matching support region and shot, the support-side metrics
order constructed cases correctly, and `vlx fewshot` works end to end."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vlx.errors import InputError, UsageError
from vlx.fewshot import (FEWSHOT_EXPLAINERS, FewShotModel, FewShotOutput, MatchingSegmenter, diagnose,
                         episode_suite, explain_support, make_episode, miou_loss, prepare, support_curve)
from vlx.fewshot.episodes import make_two_region_episode
from vlx.fewshot.explain import SupportAttribution
from vlx.evaluate.curves import auc
from vlx.fewshot.metrics import iou

VLX = shutil.which("vlx", path=str(Path(sys.executable).parent)) or shutil.which("vlx")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def matcher():
    return MatchingSegmenter(device="cpu")


class PlantedFewShot:
    """Implements the protocol with a known answer: the query foreground covers the share of query
    columns equal to the share of a "key" square of shot 0 that is still intact (white)."""

    name, levels, input_size, supports_level_weights = "planted", ("planted",), (32, 32), False
    device = torch.device("cpu")
    key = (slice(4, 12), slice(4, 12))

    def to_input(self, images):
        return torch.stack([torch.from_numpy(np.array(Image.fromarray(a).resize((32, 32)))).permute(2, 0, 1)
                            .float() / 255 for a in images])

    def forward(self, query, support, support_masks, level_weights=None):
        b, k = support.shape[:2]
        frac = support[:, 0, :, self.key[0], self.key[1]].mean((1, 2, 3))          # (B,) in [0, 1]
        cols = (torch.arange(32, dtype=torch.float32) + 0.5) / 32
        fg = 20 * (frac[:, None, None] - cols.view(1, 1, 32)).expand(b, 32, 32)
        logits = torch.stack([torch.zeros_like(fg), fg], 1)
        aff = torch.full((b, k, 16, 16), 1.0 / (k * 16))
        return FewShotOutput(logits, [aff], [(4, 4)], [(4, 4)], [support])


def planted_episode():
    q = np.zeros((32, 32, 3), np.uint8)
    sup = [np.full((32, 32, 3), 255, np.uint8), np.full((32, 32, 3), 255, np.uint8)]
    masks = [np.ones((32, 32), bool)] * 2
    return q, sup, masks


def planted_map(values: np.ndarray, method: str = "constructed") -> SupportAttribution:
    return SupportAttribution(tuple(values), values.astype(np.float32), method, True, 0.0)


def key_maps(rng):
    true = np.zeros((2, 32, 32), np.float32)
    true[0, 4:12, 4:12] = 1.0
    true += 0.01 * rng.random(true.shape).astype(np.float32)
    return {"true": true, "random": rng.random(true.shape).astype(np.float32), "inverted": -true}


def test_protocol_and_shapes(matcher):
    assert isinstance(matcher, FewShotModel) and isinstance(PlantedFewShot(), FewShotModel)
    e = make_episode(0, shots=2)
    inp = prepare(matcher, e.query.pixels, [s.pixels for s in e.supports], e.support_masks)
    with torch.no_grad():
        out = matcher.forward(inp.query, inp.support, inp.masks)
        half = matcher.forward(inp.query, inp.support, inp.masks, torch.tensor([1.0, 1.0, 0.0, 0.0]))
    assert out.logits.shape == (1, 2, 24, 24) and len(out.affinities) == len(matcher.levels) == 4
    for a, qg, sg in zip(out.affinities, out.query_grids, out.support_grids):
        assert a.shape == (1, 2, qg[0] * qg[1], sg[0] * sg[1])
        soft = a.permute(0, 2, 1, 3).flatten(2).softmax(-1)                       # softmax over K·Ns
        assert a.abs().max() <= matcher.tau + 1e-4 and soft.sum(-1).allclose(torch.ones(1, qg[0] * qg[1]))
    assert (half.foreground_probability() <= out.foreground_probability() + 1e-6).all()


def test_matching_segments_planted_objects(matcher):
    ious, trivial = [], []
    for e in episode_suite(4, shots=2):                    # two object, two texture episodes
        inp = prepare(matcher, e.query.pixels, [s.pixels for s in e.supports], e.support_masks)
        with torch.no_grad():
            out = matcher.forward(inp.query, inp.support, inp.masks)
        from vlx.fewshot.inputs import query_prediction
        gt = torch.from_numpy(e.query_mask)
        ious.append(float(iou(query_prediction(out, inp.query_hw), gt)[0]))
        trivial.append(float(e.query_mask.mean()))         # IoU of predicting all foreground
    assert np.mean(ious) > 0.55 and np.mean(ious) > np.mean(trivial) + 0.3, (ious, trivial)


@pytest.mark.parametrize("seed", [0, 1, 2, 4])
def test_explainer_mass_on_the_matching_support_region(matcher, seed):
    e = make_two_region_episode(seed)
    sup, masks = [e.supports[0].pixels], list(e.support_masks)
    a = explain_support(matcher, e.query.pixels, sup, masks, "affinity-masked")
    pos = np.clip(a.maps[0], 0, None)
    matching = e.support_masks[0] & ~e.distractors[0]
    # the reference normalisation (each support position over all query positions) flattens the
    # map: the matching half of the mask holds 60-81% of its mass, 1.5-4x the distractor's density
    assert pos[matching].sum() / pos[e.support_masks[0]].sum() > 0.57
    assert pos[matching].mean() > 1.3 * pos[e.distractors[0]].mean()


def test_mismatched_shot_is_named_least(matcher):
    e = make_episode(0, shots=1, kind="object")
    bad = make_episode(101, shots=1, kind="object")
    assert bad.category != e.category
    sup, masks = [e.supports[0].pixels, bad.supports[0].pixels], [e.support_masks[0], bad.support_masks[0]]
    inp = prepare(matcher, e.query.pixels, sup, masks)
    a = explain_support(matcher, e.query.pixels, sup, masks, "affinity-masked", inputs=inp)
    assert a.shot_shares()[0] > 0.6                        # 0.64 with the reference normalisation
    d = diagnose(matcher, inp, a, e.query_mask)
    assert [s.rank for s in d.shots] == [1, 2]
    assert d.sentence.startswith("Shot 2 contributes least") and "mIoU" in d.sentence
    assert d.shots[1].delta_points == pytest.approx(100 * (d.shots[1].iou_without - d.iou_all))


def test_ablation_weights_sum_to_one(matcher):
    e = make_episode(1, shots=1)
    a = explain_support(matcher, e.query.pixels, [e.supports[0].pixels], e.support_masks, "affinity-masked-ablation")
    assert len(a.level_weights) == 4 and sum(a.level_weights) == pytest.approx(1.0)
    assert a.maps[0].shape == (192, 192) and (a.maps[0] >= 0).all()


@pytest.mark.parametrize("method", FEWSHOT_EXPLAINERS.names())
def test_every_explainer_contract_on_planted_model(method):
    q, sup, masks = planted_episode()
    if method.endswith("-ablation"):                      # the planted model cannot weight levels
        with pytest.raises(UsageError, match="cannot weight its levels"):
            explain_support(PlantedFewShot(), q, sup, masks, method)
        return
    a = explain_support(PlantedFewShot(), q, sup, masks, method)
    assert a.raw.shape == (2, 32, 32) and len(a.maps) == 2 and np.isfinite(a.raw).all()
    assert a.method == method and a.shot_shares().sum() == pytest.approx(1.0)
    if method in ("saliency", "ig", "occlusion", "kernelshap", "lime"):   # they see the planted key
        assert a.shot_shares()[0] > 0.75
    if method in ("saliency", "ig", "occlusion"):
        assert np.abs(a.raw[0, 4:12, 4:12]).sum() > np.abs(a.raw[0]).sum() * 0.5


def test_metrics_order_constructed_maps(rng):
    model = PlantedFewShot()
    q, sup, masks = planted_episode()
    inp = prepare(model, q, sup, masks)
    scores = {}
    for name, raw in key_maps(rng).items():
        a = planted_map(raw, name)
        d = auc(*support_curve(model, inp, a, "deletion", steps=32)[::-1])
        i = auc(*support_curve(model, inp, a, "insertion", steps=32)[::-1])
        dl = auc(*support_curve(model, inp, a, "deletion", measure="logit", steps=32)[::-1])
        scores[name] = (d, i, dl)
    assert scores["true"][0] < scores["random"][0] < scores["inverted"][0]
    assert scores["true"][1] > scores["random"][1] > scores["inverted"][1]
    assert scores["true"][2] < scores["random"][2] < scores["inverted"][2]


def test_miou_loss_properties(rng):
    model = PlantedFewShot()
    q, sup, masks = planted_episode()
    inp = prepare(model, q, sup, masks)
    maps = key_maps(rng)
    ps = [1, 2, 5, 10, 25, 50, 100]
    losses = {k: miou_loss(model, inp, planted_map(v), ps) for k, v in maps.items()}
    for v in losses.values():
        assert v[-1] == pytest.approx(0.0) and ((-1 <= v) & (v <= 1)).all()
    assert (np.diff(losses["true"]) <= 1e-9).all()                     # keeping more never hurts here
    assert losses["true"][0] < losses["random"][0] <= losses["inverted"][0]
    with pytest.raises(ValueError):
        miou_loss(model, inp, planted_map(maps["true"]), [0])


def test_episodes_are_seeded_and_masks_exact():
    a, b = make_episode(5, shots=3), make_episode(5, shots=3)
    assert np.array_equal(a.query.pixels, b.query.pixels) and a.category == b.category and a.shots == 3
    assert all(m.dtype == bool and m.shape == (192, 192) and 0.05 < m.mean() < 0.5 for m in a.support_masks)
    assert not np.array_equal(make_episode(6).query.pixels, a.query.pixels)


def test_bad_episodes_raise_one_line_errors(matcher):
    q = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(InputError, match="empty"):
        prepare(matcher, q, [q], [np.zeros((64, 64), bool)])
    with pytest.raises(InputError, match="size"):
        prepare(matcher, q, [q], [np.ones((32, 64), bool)])
    with pytest.raises(InputError, match="at least one"):
        prepare(matcher, q, [], [])
    with pytest.raises(UsageError, match="unknown few-shot explainer"):
        explain_support(matcher, q, [q], [np.ones((64, 64), bool)], "nope")


def test_report_escapes_text(tmp_path):
    from vlx.fewshot.diagnose import Diagnosis, ShotReport
    from vlx.fewshot.report import render_report

    q, sup, masks = planted_episode()
    a = planted_map(np.ones((2, 32, 32), np.float32))
    shots = (ShotReport(0, 0.5, 1, 0.9, -1.0), ShotReport(1, 0.5, 2, 0.95, 4.0))
    d = Diagnosis(shots, 0.91, "ground truth", "<script>alert(1)</script>")
    html = render_report(q, np.zeros((32, 32), bool), sup, masks, a, d, names=["<b>x</b>", "y"])
    assert "<script>alert" not in html and "&lt;script&gt;" in html and "&lt;b&gt;x" in html
    assert html.count("data:image/png;base64,") == 2 + 2 * 2


def _write_episode(tmp: Path):
    e = make_episode(0, shots=2)
    for k, (s, m) in enumerate(zip(e.supports, e.support_masks)):
        Image.fromarray(s.pixels).save(tmp / f"s{k}.png")
        Image.fromarray((m * 180).astype(np.uint8)).save(tmp / f"m{k}.png")      # not binary 0/255: fine
    Image.fromarray(e.query.pixels).save(tmp / "q.png")
    Image.fromarray((e.query_mask * 255).astype(np.uint8)).save(tmp / "qm.png")
    Image.fromarray(np.zeros((192, 192), np.uint8)).save(tmp / "empty.png")
    Image.fromarray(np.zeros((100, 192), np.uint8)).save(tmp / "small.png")


def _vlx(*args):
    assert VLX, "the vlx console script is not installed"
    return subprocess.run([VLX, *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})


def test_cli_fewshot_end_to_end(tmp_path):
    _write_episode(tmp_path)
    p = _vlx("fewshot", "--support", f"{tmp_path}/s0.png:{tmp_path}/m0.png", f"{tmp_path}/s1.png:{tmp_path}/m1.png",
             "--query", tmp_path / "q.png", "--query-mask", tmp_path / "qm.png", "--out", tmp_path / "out", "--json")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert data["explainer"] == "affinity-masked" and len(data["diagnosis"]["shots"]) == 2
    assert {m["name"] for m in data["metrics"]} >= {"support-deletion", "support-insertion", "miou-loss@1%"}
    assert data["diagnosis"]["iou_all"] > 0.5 and "contributes least" in p.stderr
    assert (tmp_path / "out" / "report.html").stat().st_size > 20_000
    assert np.load(tmp_path / "out" / "support_maps.npz")["shot1"].shape == (192, 192)


@pytest.mark.parametrize("support, needle", [("s0.png:empty.png", "empty"), ("s0.png", "IMG:MASK")])
def test_cli_fewshot_bad_inputs(tmp_path, support, needle):
    _write_episode(tmp_path)
    img, _, mask = support.partition(":")
    spec = f"{tmp_path}/{img}:{tmp_path}/{mask}" if mask else f"{tmp_path}/{img}"
    p = _vlx("fewshot", "--support", spec, "--query", tmp_path / "q.png", "--out", tmp_path / "o", "--no-metrics")
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("vlx: error:"), p.stderr
    assert needle in lines[0] and "Traceback" not in p.stderr


@pytest.mark.parametrize("support, needle", [("s0.png:small.png", "size"), ("missing.png:m0.png", "no such file"),
                                             ("s0.png:q.png", "")])
def test_run_files_checks_inputs(tmp_path, support, needle):
    from vlx.fewshot.api import load_mask, run_files

    _write_episode(tmp_path)
    img, _, mask = support.partition(":")
    if not needle:                                       # a photo as a mask: thresholded at half its max
        m = load_mask(tmp_path / "q.png", (192, 192))
        assert m.dtype == bool and 0 < m.mean() < 1
        return
    with pytest.raises(InputError, match=needle):
        run_files([f"{tmp_path}/{img}:{tmp_path}/{mask}"], tmp_path / "q.png", tmp_path / "o", metrics=False,
                  device="cpu")
