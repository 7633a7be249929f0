"""TAM against an independent port of the authors' reference formulas (``tam.py``: ``TAM``,
``least_squares``, ``rank_guassian_filter``), on small arrays and on a tiny random Qwen2-VL.

The oracle below is written from the reference code's structure, not from vlx: the question is
located the reference's way (the tokens between ``<|vision_end|>`` and ``<|im_end|>``), the
context of answer token ``t`` is ``txt_all[:len(prompt) + t]`` (the question, then every earlier
answer token, ``a_{t-1}`` included) minus tokens equal to ``a_t``; the text scores are indexed as
the reference concatenates them (question tokens at their own positions, answer token ``j`` at
the position that generated it); the least-squares scale comes from ``scipy.optimize``; the rank
Gaussian filter is a plain double loop. Documented departures from the reference, not ported:
its first prompt token's map uses the greedy prediction instead of the token itself, and its
joint min-max normalisation with the text scores before the filter (a positive rescaling when
the minimum is 0, which the filter commutes with; the comparison here is up to that scale).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar

from vlx.mllm import load_mllm
from vlx.mllm.context import AnswerContext
from vlx.mllm.filters import rank_gaussian_filter
from vlx.mllm.methods import get_mllm_method
from vlx.testing.tiny_mllm import PlantedMLLM, planted_image, tiny_mllm_folder
from vlx.types import ImageInput


# ------------------------------------------------------------------------------- the oracle
def ref_rank_filter(img: np.ndarray, k: int = 3) -> np.ndarray:
    out = np.zeros_like(img, dtype=np.float64)
    p = k // 2
    padded = np.pad(img.astype(np.float64), p, mode="reflect")
    ax = np.array(range(k * k)) - k * k // 2
    for i in range(p, img.shape[0] + p):
        for j in range(p, img.shape[1] + p):
            window = np.sort(padded[i - p:i + p + 1, j - p:j + p + 1].flatten())
            mean = window.mean()
            if mean > 0 and window.std() == 0:
                value = window[k * k // 2]     # the reference divides by zero here (NaN); the limit
            elif mean > 0:
                sigma = window.std() / mean
                kern = np.exp(-(ax ** 2) / (2 * sigma ** 2))
                value = (window * kern / kern.sum()).sum()
            else:
                value = 0.0
            out[i - p, j - p] = value
    return out


def ref_least_squares(a: np.ndarray, b: np.ndarray) -> float:
    return float(minimize_scalar(lambda x: np.sum((a - b * x) ** 2)).x)


def ref_tam(logits: np.ndarray, ids: list[int], img_idx: np.ndarray, prompt: list[int], prompt_len: int,
            t: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ``t``'s map before and after estimated causal inference. ``logits`` ``(T, V)``;
    ``ids`` the full sequence; ``prompt`` the question's positions; answer token ``j`` sits at
    ``prompt_len + j``."""
    def scores(cls: int) -> np.ndarray:
        return np.clip(logits[:, cls], 0, None)

    txt_all = [ids[i] for i in prompt] + ids[prompt_len:prompt_len + t + 1]
    img_maps = [scores(ids[i])[img_idx] for i in prompt] + \
               [scores(ids[prompt_len + j])[img_idx] for j in range(t + 1)]
    cls = ids[prompt_len + t]
    s = scores(cls)
    txt_scores = np.concatenate([s[prompt], s[prompt_len - 1:prompt_len], s[prompt_len:prompt_len + t]])
    img = img_maps[len(prompt) + t]
    vis = len(prompt) + t
    keep = [i for i in range(vis) if txt_all[i] != txt_all[vis]]
    if not keep:
        return img, img
    w = txt_scores[keep]
    w = w / (w.sum() + 1e-8)
    interf = (np.stack([img_maps[i] for i in keep]) * w[:, None]).sum(0)
    return img, np.clip(img - interf * ref_least_squares(img, interf), 0, None)


# ------------------------------------------------------------------------------- small arrays
def test_rank_filter_matches_reference_loop():
    rng = np.random.default_rng(0)
    for shape in [(5, 7), (2, 3), (6, 6), (3, 1)]:
        g = rng.random(shape) ** 3
        g[rng.random(shape) < 0.3] = 0.0                         # exact zeros, as in TAM maps
        np.testing.assert_allclose(rank_gaussian_filter(g), ref_rank_filter(g), rtol=1e-5, atol=1e-7)
    noisy = np.array([[0.0, 0.0, 0.0], [0.0, 9.0, 0.0], [0.0, 0.0, 0.0]])
    assert rank_gaussian_filter(noisy)[1, 1] < 1.0             # an isolated spike is suppressed
    flat = np.full((3, 4), 2.5)
    np.testing.assert_allclose(rank_gaussian_filter(flat), flat)  # sigma 0: the limit (the value)
    with pytest.raises(ValueError):
        rank_gaussian_filter(flat, kernel=2)


def test_least_squares_scale_matches_reference():
    from vlx.mllm.methods import remove_interference

    rng = np.random.default_rng(1)
    base = rng.random(12)
    maps = rng.random((12, 3))
    w = np.array([0.5, 0.0, 2.0])
    got, alpha = remove_interference(torch.tensor(base), torch.tensor(maps), torch.tensor(w))
    inter = maps @ (w / w.sum())
    a = ref_least_squares(base, inter)
    assert alpha == pytest.approx(a, rel=1e-5)
    np.testing.assert_allclose(got.numpy(), np.clip(base - a * inter, 0, None), rtol=1e-5, atol=1e-8)
    same, zero = remove_interference(torch.tensor(base), torch.tensor(maps), torch.zeros(3))
    assert zero == 0.0 and torch.equal(same, torch.tensor(base))


# ------------------------------------------------------------------------------- models
@pytest.fixture(scope="module")
def planted_random():
    """The planted MLLM with a random lm_head: every token's logit lens varies over the image,
    so the interference maps are not trivial. Prompt: <bos> picture <image>x64 <question> reply."""
    model = PlantedMLLM()
    g = torch.Generator().manual_seed(7)
    from vlx.testing.tiny_mllm import U, W_IMG

    w = torch.randn(model.net.lm_head.weight.shape, generator=g)
    w[:, W_IMG] = w[:, W_IMG].abs() * 0.3                     # a positive floor everywhere on the image
    w[:, U] *= 3                                              # plus a signed redness term
    with torch.no_grad():
        model.net.lm_head.weight.copy_(w)
    img = planted_image(64)
    words = ["red", "w1", "red", "it", "w2", "blue"]        # a repeat, and "it" is also a question word
    ctx = AnswerContext(model, img, "what colour has it?", answer_ids=model.tokenizer.convert_tokens_to_ids(words))
    question = np.arange(2 + 64, ctx.inputs.prompt_len - 1)  # between the image and "reply"
    return ctx, question


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    folder = tiny_mllm_folder("qwen2_vl", tmp_path_factory.mktemp("qwen2_vl"), seed=3)
    model = load_mllm(f"hf:{folder}", "cpu")
    rng = np.random.default_rng(0)
    img = ImageInput(rng.integers(0, 255, (56, 84, 3)).astype(np.uint8), id="noise")
    tok = model.tokenizer
    answer = tok.convert_tokens_to_ids(["a", "photo", "a", "image", "of", "cat"])  # a repeat; "image" is asked
    assert tok.unk_token_id not in answer
    ctx = AnswerContext(model, img, "what is in the image", answer_ids=answer)
    # the reference's way: the tokens strictly between <|vision_end|> and the next <|im_end|>
    ids = ctx.inputs.input_ids[0].tolist()
    start = ids.index(tok.convert_tokens_to_ids("<|vision_end|>"))
    end = ids.index(tok.convert_tokens_to_ids("<|im_end|>"), start)
    return ctx, np.arange(start + 1, end)


def check_context(ctx: AnswerContext, question: np.ndarray) -> None:
    q = question.tolist()
    for t in range(len(ctx.answer_ids)):
        tc = ctx.text_context(t)
        assert tc.positions.tolist() == q + [ctx.inputs.prompt_len + j for j in range(t)]   # a_{t-1} included
        assert tc.score_positions.tolist() == q + [ctx.inputs.prompt_len + j - 1 for j in range(t)]
        assert tc.ids.tolist() == ctx.inputs.input_ids[0, tc.positions].tolist()


def check_oracle(ctx: AnswerContext, question: np.ndarray) -> None:
    logits = ctx.output().logits[0].double().numpy()
    ids = ctx.inputs.input_ids[0].tolist()
    img_idx = ctx.image_positions.numpy()
    tokens = list(range(len(ctx.answer_ids)))
    raw = get_mllm_method("tam").token_values(ctx, tokens)
    off = get_mllm_method("tam", weights="none").token_values(ctx, tokens)
    maps = get_mllm_method("tam").explain(ctx, tokens)
    unfiltered = get_mllm_method("tam", filter=False).explain(ctx, tokens)
    changed = 0
    for t in tokens:
        before, after = ref_tam(logits, ids, img_idx, question, ctx.inputs.prompt_len, t)
        np.testing.assert_allclose(off[t][0], before, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(raw[t][0], after, rtol=1e-4, atol=1e-5)
        changed += float(np.abs(after - before).max()) > 0.05 * float(before.max())
        grid = ctx.inputs.layout.grids(after)[0]
        np.testing.assert_allclose(rank_gaussian_filter(ctx.inputs.layout.grids(raw[t][0])[0]), ref_rank_filter(grid),
                                   rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(maps[t].raw, after, rtol=1e-4, atol=1e-5)
        want = ctx.inputs.layout.to_image(after, grids=[ref_rank_filter(grid).astype(np.float32)])
        np.testing.assert_allclose(maps[t].values, want, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(unfiltered[t].values, ctx.inputs.layout.to_image(after), rtol=1e-4, atol=1e-5)
    assert changed >= 3        # interference removal visibly changes most tokens' maps here


def test_tam_context_planted(planted_random):
    ctx, question = planted_random
    check_context(ctx, question)
    words = ctx.model.decode_tokens(ctx.text_context(0).ids.tolist())
    assert [w.strip() for w in words] == ["what", "colour", "has", "it", "?"]     # not "picture" nor "reply"


def test_tam_matches_reference_oracle_planted(planted_random):
    check_oracle(*planted_random)


def test_tam_weights_option(planted_random):
    ctx, _ = planted_random
    with pytest.raises(ValueError, match="tam, arc or none"):
        get_mllm_method("tam", weights="arcs").token_values(ctx, [0])
    d = get_mllm_method("tam").explain(ctx, [2])[0].details          # token 2 repeats token 0 ("red")
    assert ctx.answer_ids[2] not in d["context_ids"] and ctx.answer_ids[1] in d["context_ids"]
    d = get_mllm_method("tam").explain(ctx, [4])[0].details
    assert d["weights"] == "tam" and d["alpha"] > 0.5 and len(d["context_weights"]) == len(d["context_ids"]) == 9


@pytest.mark.slow
def test_tam_context_qwen2_vl(qwen):
    ctx, question = qwen
    check_context(ctx, question)
    words = ctx.model.decode_tokens(ctx.text_context(0).ids.tolist())
    assert not {"system", "user", "assistant", "helpful"} & {w.strip() for w in words}   # no template words


@pytest.mark.slow
def test_tam_matches_reference_oracle_qwen2_vl(qwen):
    check_oracle(*qwen)
