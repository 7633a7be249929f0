"""MLLM explanation: tiny random models of each family end to end (image positions, grids,
merges and tiles mapped back to the image), the planted-signal model (every method finds the
planted patches; ARC ranks the planted context word first), RBO against its formula, metrics,
the report and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vlx.mllm import load_mllm
from vlx.mllm.arc import rbo, rbo_reference
from vlx.mllm.ask import ask, context_relevance
from vlx.mllm.context import AnswerContext
from vlx.mllm.methods import MLLM_METHODS, get_mllm_method
from vlx.mllm.metrics import deletion_insertion, iou_with_mask, mass_inside
from vlx.mllm.msea import msea
from vlx.testing.tiny_mllm import MLLM_FAMILIES, PlantedMLLM, planted_image, planted_mask, tiny_mllm_folder
from vlx.types import ImageInput

# For a 40 × 60 image: (image tokens, tiles as (name, grid, canvas box)).
EXPECTED = {
    "llava": (16, [("square", (4, 4), (0, -10, 60, 50))]),
    "llava_next": (16 + 6 * 9, [("base", (4, 4), (0, 0, 60, 40)), ("any-res", (6, 8), (0, 0, 60, 40))]),
    "qwen2_vl": (6, [("merged", (2, 3), (0, 0, 60, 40))]),
    "qwen2_5_vl": (6, [("merged", (2, 3), (0, 0, 60, 40))]),
    "idefics3": (20, [("crop r1c1", (2, 2), (0, 0, 30, 20)), ("crop r1c2", (2, 2), (30, 0, 60, 20)),
                      ("crop r2c1", (2, 2), (0, 20, 30, 40)), ("crop r2c2", (2, 2), (30, 20, 60, 40)),
                      ("global", (2, 2), (0, 0, 60, 40))]),
}


def _halves() -> ImageInput:
    a = np.zeros((40, 60, 3), np.uint8)
    a[:, :30] = 255  # white left half, black right half
    a[:20, 30:] = 90  # grey top-right quarter
    return ImageInput(a, id="halves")


@pytest.fixture(scope="module", params=MLLM_FAMILIES)
def tiny(request, tmp_path_factory):
    folder = tiny_mllm_folder(request.param, tmp_path_factory.mktemp(request.param))
    return request.param, load_mllm(f"hf:{folder}", "cpu")


def test_family_positions_grids_and_tiles(tiny):
    family, model = tiny
    img = _halves()
    inputs = model.prepare(img, "what is in the image?")
    n, tiles = EXPECTED[family]
    assert len(inputs.image_positions) == n == inputs.layout.n
    assert int((inputs.input_ids[0] == model.image_token_id).sum()) == n
    got = [(t.name, t.grid_hw, tuple(round(v) for v in t.canvas_xyxy)) for t in inputs.layout.tiles]
    assert got == tiles
    # one token lit → its pixels lie in that token's cell box (nearest mapping), nothing else lit
    for idx, _, (x0, y0, x1, y1) in inputs.layout.cell_boxes()[:: max(1, n // 5)]:
        v = np.zeros(n, np.float32)
        v[idx] = 1
        m = inputs.layout.to_image(v, mode="nearest")
        ys, xs = np.nonzero(m)
        assert len(ys) and ys.min() >= np.floor(y0) - 1 and ys.max() <= np.ceil(y1) + 1
        assert xs.min() >= np.floor(x0) - 1 and xs.max() <= np.ceil(x1) + 1
    # the pixel tensor, mapped back through the pixel layout, reproduces the image's brightness
    x = inputs.pixels[inputs.pixel_key]
    back = inputs.pixel_layout.to_image(x.float().mean(inputs.channel_dim).flatten())
    gray = img.pixels.mean(-1)
    assert np.corrcoef(back.ravel(), gray.ravel())[0, 1] > 0.9


def test_family_ask_end_to_end(tiny, tmp_path):
    from vlx.mllm.report import write_ask_report

    family, model = tiny
    img = _halves()
    for method in ("tam", "llavacam", "gradxinput", "rollout"):
        res = ask(model, img, "what is in the image?", method, tokens=[0], arc=True, max_new_tokens=2,
                  regions=False)
        amap = res.tokens[0].map
        assert amap.values.shape == img.size_hw and np.isfinite(amap.values).all()
        assert 0 <= res.tokens[0].probability <= 1
    path = write_ask_report(res, tmp_path / family)
    assert path.exists() and json.loads((tmp_path / family / "answer.json").read_text())["tokens"]


@pytest.fixture(scope="module")
def planted():
    model = PlantedMLLM()
    img = planted_image()
    ctx = AnswerContext(model, img, "what colour has it?")
    return model, img, ctx


def test_planted_answer(planted):
    model, _, ctx = planted
    assert model.decode_tokens(ctx.answer_ids)[0].strip() == "red"
    assert float(ctx.model.answer_probability(ctx.inputs, 0, ctx.answer_ids[0])[0]) > 0.8


@pytest.mark.parametrize("name", MLLM_METHODS.names())
def test_planted_every_method_finds_the_planted_patches(planted, name):
    _, img, ctx = planted
    mask = planted_mask(img.size_hw)  # 14% of the image; a red distractor the model cannot see lies elsewhere
    amap = get_mllm_method(name).explain(ctx, [0])[0]
    assert mass_inside(amap, mask) > 0.55, name


def test_planted_msea_and_arc_tam(planted):
    _, img, ctx = planted
    mask = planted_mask(img.size_hw)
    single = msea(ctx, get_mllm_method("tam"), [0], (1.0,))[0]
    base = get_mllm_method("tam").explain(ctx, [0])[0]
    np.testing.assert_allclose(single.values, base.normalized(), atol=1e-6)
    for agg in ("mean", "weighted"):
        # shrunk views move the red square off the gated patches, so smaller scales see less of
        # it: the aggregate still holds over twice the planted area's share (14%) of the mass
        m = msea(ctx, get_mllm_method("tam"), [0], (1.0, 0.75, 0.5), agg)[0]
        assert mass_inside(m, mask) > 0.3
        assert [s["scale"] for s in m.details["scales"]] == [1.0, 0.75, 0.5]
        assert all(s["seconds"] > 0 for s in m.details["scales"])
    picked = msea(ctx, get_mllm_method("tam"), [0], (1.0, 0.5), "weighted", weights=(1.0, 0.0))[0]
    np.testing.assert_allclose(picked.values, single.values, atol=1e-6)   # the weights are used
    assert [s["weight"] for s in picked.details["scales"]] == [1.0, 0.0]
    arc_map = get_mllm_method("tam", weights="arc").explain(ctx, [0])[0]
    assert mass_inside(arc_map, mask) > 0.55


def test_arc_ranks_the_planted_context_word_first(planted):
    _, _, ctx = planted
    rel = context_relevance(ctx, 0)
    words = dict(rel)
    assert rel[0][0] == "colour"
    assert all(words["colour"] > v + 0.2 for w, v in rel if w != "colour")
    weights = get_mllm_method("tam", weights="arc").explain(ctx, [0])[0].details["context_weights"]
    assert min(weights) == pytest.approx(1 - words["colour"], abs=1e-5)


def test_rbo_matches_reference_formula():
    rng = np.random.default_rng(0)
    ident = torch.arange(50)
    assert float(rbo(ident, ident)) == pytest.approx(1.0, abs=1e-6)
    assert float(rbo(ident, ident + 100)) == pytest.approx(0.0, abs=1e-6)
    cases = [rng.permutation(80)[:50] for _ in range(6)]
    cases.append(np.r_[np.arange(10), rng.permutation(np.arange(10, 80))[:40]])
    ref = np.arange(50)
    got = rbo(torch.tensor(np.stack(cases)), torch.tensor(ref), p=0.9).numpy()
    want = [rbo_reference(list(c), list(ref), 0.9) for c in cases]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # top-weighted: swapping the first two items costs more than swapping the last two
    a = list(range(10))
    top, bottom = [1, 0] + a[2:], a[:8] + [9, 8]
    assert rbo_reference(top, a) < rbo_reference(bottom, a)


def test_planted_metrics(planted):
    _, img, ctx = planted
    amap = get_mllm_method("tam").explain(ctx, [0])[0]
    dele, ins = deletion_insertion(ctx, amap, steps=5)
    assert dele.value < ins.value and not dele.higher_is_better and ins.higher_is_better
    assert len(dele.details["curve"]) == 6
    assert iou_with_mask(amap, planted_mask(img.size_hw)).value > 0.5


def test_cli_ask_planted_and_bad_inputs(tmp_path, capsys, monkeypatch):
    from PIL import Image

    import vlx.mllm.load
    from vlx.cli import main

    real = vlx.mllm.load.load_mllm   # the CLI knows no test model: the test plants it behind the loader
    monkeypatch.setattr(vlx.mllm.load, "load_mllm", lambda spec, device="auto": PlantedMLLM() if spec == "planted"
                        else real(spec, device))

    path = tmp_path / "planted.png"
    Image.fromarray(planted_image().pixels).save(path)
    with pytest.raises(SystemExit) as e:
        main(["ask", str(path), "what colour has it?", "--model", "planted", "--arc", "--out", str(tmp_path / "o")])
    assert e.value.code == 0
    html = (tmp_path / "o" / "planted" / "report.html").read_text()
    assert "data:image/png;base64," in html and "red" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:      # --json: stdout is JSON and only JSON
        main(["ask", str(path), "what colour has it?", "--model", "planted", "--json", "--out", str(tmp_path / "o")])
    assert e.value.code == 0
    assert json.loads(capsys.readouterr().out)["answer"]
    for argv, words in ((["--method", "nope"], "unknown mllm method"), (["--model", "nope"], "unknown MLLM"),
                        (["--tokens", "9"], "does not exist"), (["--scales", "0"], "--scales")):
        with pytest.raises(SystemExit) as e:
            main(["ask", str(path), "what colour has it?", "--model", "planted", "--out", str(tmp_path / "o"), *argv])
        assert e.value.code == 2
        msg = capsys.readouterr().err
        assert words in msg and len(msg.strip().splitlines()) == 1


def test_report_escapes_the_question(planted, tmp_path):
    from vlx.mllm.report import write_ask_report

    model, img, _ = planted
    res = ask(model, img, "what colour has it? <script>alert(1)</script>", "attention", tokens=[0], regions=False)
    html = write_ask_report(res, tmp_path).read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


@pytest.mark.slow
def test_demo_answers_cat_and_stops(chelsea):
    model = load_mllm("demo", "cpu")
    res = ask(model, chelsea, "What is in the image?", "tam", max_new_tokens=16, regions=False)
    assert "cat" in res.answer.lower() or "tabby" in res.answer.lower()
    assert res.tokens[0].map.values.shape == chelsea.size_hw
    assert 0 < len(res.pieces) < 16 and not res.hit_limit         # ended before the token limit
    words = res.answer.replace(",", " , ").split()
    assert all(a != b for a, b in zip(words, words[1:]))           # no word said twice in a row
    grams = [tuple(words[i:i + 2]) for i in range(len(words) - 1)]
    assert len(grams) == len(set(grams))                          # no two-word phrase said twice


# the stopping rule on token texts; ids are the texts' indices in a small vocabulary
@pytest.mark.parametrize("pieces, want", [
    ([" cat", ",", " a", " cat", ",", " a"], " cat"),                                   # the demo's loop
    ([" crane", " crane", " crane", ",", " a"], " crane"),                              # a word said at once again
    ([" cat", " with", " a", " cat", "'s", " head", ",", " tail", ".", " The"], " cat with a cat's head, tail."),
    ([" a", " dog", " and", " a", " cat", " and", " a", " dog"], " a dog and a cat and a dog"),  # no loop
    ([" red", " ", "\n", " x"], " red"),                                              # line break ends; blank dropped
    ([" a", " big", " dog", " sat", ";", " a", " big", " dog"], " a big dog sat"),      # n-gram again: back to ';'
    ([], ""),
])
def test_answer_end_closed_forms(pieces, want):
    from vlx.mllm.stopping import answer_end

    vocab: dict[str, int] = {}
    ids = [vocab.setdefault(p, len(vocab)) for p in pieces]
    assert "".join(pieces[:answer_end(ids, pieces)]) == want


def test_loop_start_closed_forms():
    from vlx.mllm.stopping import is_finished, loop_start

    assert loop_start([1, 2, 3, 1, 2, 3]) == 3            # tandem repeat of a 3-token unit
    assert loop_start([5, 1, 1]) == 2                     # a token repeated at once
    assert loop_start([1, 2, 3, 4, 2, 3, 4]) == 4         # (2, 3, 4) twice in a row
    assert loop_start([1, 2, 3, 9, 1, 2, 3]) == 4         # trigram (1, 2, 3) again, not adjacent
    assert loop_start([1, 2, 3, 9, 1, 2, 8]) is None      # only a bigram repeats
    assert loop_start([1, 2, 3, 9, 1, 2, 8], n=2) == 4
    assert not is_finished([1, 2], [" a", " b"]) and is_finished([1, 2], [" a", "."])
    with pytest.raises(ValueError):
        loop_start([1], n=0)


def test_compare_with_random(planted):
    from vlx.mllm.context import AnswerMap
    from vlx.mllm.metrics import compare_with_random

    _, img, ctx = planted
    amap = get_mllm_method("tam").explain(ctx, [0])[0]
    good = compare_with_random(ctx, amap, n_random=2, steps=4)
    assert good.better_than_random and good.deletion_margin > 0.1 and len(good.random_deletion) == 2
    inv = 1.0 - amap.normalized()                                # the planted patches last
    bad = compare_with_random(ctx, AnswerMap((0,), amap.text, "inverted", inv, inv.ravel()), n_random=2, steps=4)
    assert not bad.better_than_random and bad.deletion_margin < 0
    assert bad.random_deletion == good.random_deletion          # same random maps, same seeds
    with pytest.raises(ValueError):
        compare_with_random(ctx, amap, n_random=0)


def test_compare_maps_with_random_matches_one_token_curves(planted):
    """Several maps at once (two tokens, one inverted map) give what ``deletion_insertion`` gives
    for each map and for each hand-built random map, token by token."""
    from vlx.mllm.context import AnswerMap
    from vlx.mllm.metrics import compare_maps_with_random

    _, img, ctx = planted
    m0, m1 = get_mllm_method("tam").explain(ctx, [0, 1])
    inv = 1.0 - m0.normalized()
    maps = [m0, m1, AnswerMap((0,), m0.text, "inverted", inv, inv.ravel())]
    comps = compare_maps_with_random(ctx, maps, n_random=2, steps=4)
    layout = ctx.inputs.layout
    for m, c in zip(maps, comps):
        d, i = deletion_insertion(ctx, m, steps=4)
        assert c.token == m.tokens[0] and c.method == m.method
        np.testing.assert_allclose([c.deletion, c.insertion], [d.value, i.value], atol=1e-6)
        np.testing.assert_allclose(c.deletion_curve, d.details["curve"], atol=1e-6)
        for k in range(2):
            v = np.random.default_rng(k).random(layout.n).astype(np.float32)
            rd, ri = deletion_insertion(ctx, AnswerMap(m.tokens, m.text, "random", layout.to_image(v), v), steps=4)
            np.testing.assert_allclose([c.random_deletion[k], c.random_insertion[k]], [rd.value, ri.value], atol=1e-6)
            np.testing.assert_allclose(c.random_insertion_curves[k], ri.details["curve"], atol=1e-6)
        md, mi = c.metrics()
        assert md.details["random"] == pytest.approx(np.mean(c.random_deletion)) and mi.higher_is_better
    assert comps[0].better_than_random and not comps[2].better_than_random
    assert comps[1].random_deletion != comps[0].random_deletion    # each token follows its own probability


@pytest.mark.parametrize("aucs, verdict, words", [
    ((0.1, 0.6, (0.3, 0.5), (0.3, 0.2)), "better than random", ("does better than a random map",)),
    ((0.4, 0.1, (0.2, 0.3), (0.2, 0.2)), "no better than random",
     ("does no better than a random map", "Do not read this map")),
    ((0.25, 0.2, (0.2, 0.3), (0.2, 0.2)), "no better than random", ("does no better",)),     # ties are not better
    ((0.2, 0.1, (0.2, 0.3), (0.2, 0.2)), "better than random on deletion only",
     ("beats a random map", "on deletion", "no better than random on insertion")),
    ((0.4, 0.3, (0.2, 0.3), (0.2, 0.2)), "better than random on insertion only",
     ("beats a random map", "on insertion", "no better than random on deletion")),
])
def test_verdict_sentence_says_it_plainly(aucs, verdict, words):
    from vlx.mllm.metrics import RandomComparison
    from vlx.report.ask import verdict_sentence

    d, i, rd, ri = aucs
    c = RandomComparison("tam", d, i, rd, ri)
    assert c.verdict == verdict
    text = verdict_sentence(c, "cat", "TAM")
    for w in words:
        assert w in text, (w, text)
    assert f"deletion AUC {d:.3f} against {np.mean(rd):.3f}" in text and f"insertion AUC {i:.3f}" in text


def test_ask_page_design_chips_and_verdicts(planted, tmp_path):
    """The page reuses the explanation report's stylesheet, has one chip and one panel per
    explained token, the ARC bars and the random-map verdicts, and the JSON holds the measures."""
    from vlx.mllm.report import write_ask_report
    from vlx.report.html import _env, ramp_css

    model, img, _ = planted
    res = ask(model, img, "what colour has it?", "tam", tokens=[0, 1], arc=True, metrics=True, n_random=2, steps=4)
    page = write_ask_report(res, tmp_path).read_text()
    style = _env().get_template("_style.css").render(ramp=ramp_css())
    assert style.strip() in page                                  # the explain report's own CSS
    assert page.count('class="tokchip"') == 2 and page.count('<section class="tokpanel tokview"') == 2
    assert page.count(" hidden>") == 3                             # the second token's map, regions, panel
    assert page.count("alt=\"input image") == 1                 # the input image once
    assert "does better than a random map for “red”" in page      # the planted patches beat random
    assert "does no better than a random map for “.”" in page     # '.' does not depend on the image
    assert 'id="tok-0-relevance"' in page and "colour" in page and "complete answer" in page
    assert "metrics" in dict(res.timing_s) and "<script>" in page and "http" not in page.split("<body>")[1]
    data = json.loads((tmp_path / "answer.json").read_text())
    assert [t["better_than_random"] for t in data["tokens"]] == [True, False]
    assert data["tokens"][0]["metrics"][0]["details"]["random_maps"] == 2 and data["hit_limit"] is False
