"""Property tests over the batch API and CLI with generated bad inputs (vlx.testing.badfiles):
every bad input yields one clear error line for that item, every good one a result, and the
batch goes on."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vlx.batch import run_batch
from vlx.batch.journal import read_jsonl
from vlx.pipeline import Explainer
from vlx.testing import planted_classifier
from vlx.testing.badfiles import BAD_KINDS, GOOD_KINDS, KINDS, Case, make

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@pytest.fixture(scope="module")
def planted_explainer():
    return Explainer(planted_classifier(size=32), "gradcam")


def build(kinds: list[str], folder: Path, seed: int) -> list[Case]:
    return [make(k, folder, seed * 100 + i) for i, k in enumerate(kinds)]


def check_outcomes(cases: list[Case], out: Path) -> None:
    results = {r["path"]: r for r in read_jsonl(out / "results.jsonl")}
    errors = {e["path"]: e for e in read_jsonl(out / "errors.jsonl")}
    expected = [(p, c) for c in cases if c.scanned for p in (c.path, *c.also)]
    assert len(results) + len(errors) == len(expected), (sorted(results), sorted(errors))
    for path, case in expected:
        key = str(path)
        if case.ok:
            assert key in results, (case.kind, errors.get(key))
            assert (out / results[key]["report"]).is_file()
        else:
            assert key in errors, case.kind
            msg = errors[key]["error"]
            assert "\n" not in msg and path.name in msg and errors[key]["kind"] == "InputError"
            assert any(e in msg for e in case.expect), (case.kind, msg)


@settings(max_examples=8, **SETTINGS)
@given(kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=5), seed=st.integers(0, 10_000))
def test_api_every_bad_input_is_one_error_and_the_rest_go_on(planted_explainer, kinds, seed):
    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "in put ü", Path(tmp) / "out"
        cases = build(kinds + ["mode-RGBA"], folder, seed)      # always one good image among them
        summary = run_batch(folder, out, explainer=planted_explainer)
        check_outcomes(cases, out)
        assert summary.done + summary.failed == summary.total


def run_cli(args: list[str]) -> tuple[int, str]:
    """``vlx`` in this process (the model stays cached between calls); returns (exit code, stderr)."""
    from vlx.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stderr(buf), pytest.raises(SystemExit) as e:
        main(args)
    return int(e.value.code or 0), buf.getvalue()


@settings(max_examples=2, **SETTINGS)
@given(kinds=st.lists(st.sampled_from(BAD_KINDS), min_size=1, max_size=3, unique=True),
       seed=st.integers(0, 10_000))
def test_cli_batch_records_each_bad_input_and_exits_2(kinds, seed):
    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "in", Path(tmp) / "out"
        cases = build(kinds + ["unicode-name"], folder, seed)
        code, stderr = run_cli(["batch", str(folder), "--out", str(out), "--no-progress"])
        check_outcomes(cases, out)
        bad = sum(1 + len(c.also) for c in cases if not c.ok)
        assert code == (2 if bad else 0), stderr
        assert "Traceback" not in stderr and f"{bad} failed" in stderr


@settings(max_examples=8, **SETTINGS)
@given(lines=st.lists(st.one_of(
    st.just('{"path": "good.png"}'), st.just('{"path": "good.png", "target": 1}'),
    st.just('{"path": "good.png", "target": "class 2", "ground_truth": [0, 0, 16, 16]}'),
    st.just('{"path": "missing.png"}'), st.just('{"path": "good.png", "target": "no such class"}'),
    st.just('{"path": "good.png", "target": 99}'), st.just('{"path": "good.png", "ground_truth": {"mask": "nope.png"}}'),
    st.just('{"path": "good.png", "target": 0, "ground_truth": [5, 5, 1, 1]}'), st.just("{not json"),
    st.just('["a list"]'), st.just('{"target": 1}'), st.just(""),
    st.text(max_size=20).filter(lambda s: "\n" not in s and "\r" not in s)), min_size=1, max_size=8))
def test_manifest_lines_each_succeed_or_fail_alone(planted_explainer, lines):
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        make("mode-RGBA", d, 0).path.rename(d / "good.png")
        (d / "m.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        summary = run_batch(d / "m.jsonl", d / "out", explainer=planted_explainer)
        results, errors = read_jsonl(d / "out" / "results.jsonl"), read_jsonl(d / "out" / "errors.jsonl")
        assert len(results) + len(errors) == summary.total
        assert len({r["id"] for r in results + errors}) == summary.total
        for e in errors:
            assert e["error"] and "\n" not in e["error"] and not e["error"].startswith("internal error"), e


def test_unreadable_file_is_reported_when_permissions_are_enforced(unprivileged):
    """``vlx batch`` as a user who cannot read one of the files (root reads anything, so CI drops
    to ``nobody``): that file is one error line, the readable one a result, exit code 2."""
    import sys

    run, folder = unprivileged
    (folder / "in").mkdir(mode=0o755)
    case = make("unreadable", folder / "in", 0)
    good = make("mode-RGBA", folder / "in", 1)
    for p in (folder / "in", good.path):
        p.chmod(0o755)
    case.path.chmod(0)
    out = folder / "out"
    r = run([sys.executable, "-m", "vlx.cli", "batch", str(folder / "in"), "--out", str(out), "--no-progress"])
    assert r.returncode == 2, r
    errors = read_jsonl(out / "errors.jsonl")
    assert [e["path"] for e in errors] == [str(case.path)] and "permission denied" in errors[0]["error"], errors
    assert [x["path"] for x in read_jsonl(out / "results.jsonl")] == [str(good.path)]


def test_script_bearing_file_names_are_escaped_in_every_page(tmp_path, planted_explainer):
    """File names reach the index (link text, alt text, data attributes) and each report, for
    good images and failed ones alike; markup in them must arrive escaped, never as markup."""
    from PIL import Image

    folder = tmp_path / "in"
    folder.mkdir()
    good = "<img src=x onerror=alert(1)>.png"
    bad = "bad <script>alert(2)<\\script>.png"
    Image.fromarray(random_pixels()).save(folder / good)
    (folder / bad).write_bytes(b"not an image")
    run_batch(folder, tmp_path / "out", explainer=planted_explainer)
    index = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    (report,) = (tmp_path / "out").glob("items/*/report.html")
    page = report.read_text(encoding="utf-8")
    for text in (index, page):
        assert "<img src=x onerror" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "<script>alert(2)" not in index and "bad &lt;script&gt;alert(2)&lt;" in index


def random_pixels():
    import numpy as np

    return np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)


def test_corpus_covers_good_and_bad(tmp_path):
    cases = [make(k, tmp_path, 1) for k in KINDS]
    assert {c.kind for c in cases if c.ok} >= set(GOOD_KINDS)
    assert json.dumps([str(c.path) for c in cases])          # paths are plain strings (unicode included)


@pytest.mark.parametrize("make_input, needle", [
    (lambda d: d / "nowhere", "no such folder or manifest"),
    (lambda d: make("unicode-name", d, 0).path, "must be a folder of images or a JSONL manifest"),
])
def test_cli_batch_bad_input_is_one_line(tmp_path, make_input, needle):
    code, stderr = run_cli(["batch", str(make_input(tmp_path)), "--out", str(tmp_path / "out")])
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("vlx: error:") and needle in lines[0], stderr
