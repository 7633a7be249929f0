"""Batch runs: resume after SIGKILL equals an uninterrupted run, a crash at any step of an item
loses nothing and leaves no half-written item, two processes give the same results as one,
manifests with targets and ground truth, and an escaped index page."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vlx.batch import run_batch
from vlx.batch.journal import Journal, JournalError, read_jsonl, repair_tail
from vlx.batch.items import discover, shard
from vlx.pipeline import Explainer
from vlx.testing import planted_classifier
from vlx.testing.badfiles import random_image

VLX = shutil.which("vlx", path=str(Path(sys.executable).parent)) or shutil.which("vlx")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"
ITEM_FILES = {"report.html", "explanation.json", "map.npy", "thumb.jpg"}


def key(r: dict) -> tuple:
    return r["id"], r["label"], r["class_index"], round(r["score"], 3), r["text"]


def small_folder(root: Path, n: int = 10) -> Path:
    """``n`` small photos (crops of the bundled and scikit-image pictures), some in a subfolder."""
    from skimage import data

    pics = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(EXAMPLES.glob("*"))]
    pics += [data.astronaut(), data.coffee(), data.rocket(), data.immunohistochemistry()]
    for i in range(n):
        a = pics[i % len(pics)]
        h, w = a.shape[:2]
        s = 0.6 + 0.1 * (i // len(pics))
        y, x = int((h - h * s) / 2), int((w - w * s) / 2)
        crop = Image.fromarray(a[y:y + int(h * s), x:x + int(w * s)]).resize((112, 96))
        sub = root / ("sub" if i % 3 == 0 else "")
        sub.mkdir(parents=True, exist_ok=True)
        crop.save(sub / f"img{i:02d}.{'png' if i % 2 else 'jpg'}")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return small_folder(tmp_path_factory.mktemp("batch-in"))


@pytest.fixture(scope="module")
def reference(folder, effnet, tmp_path_factory):
    """An uninterrupted one-process run with one torch thread, like the subprocess runs."""
    out = tmp_path_factory.mktemp("ref")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_batch(folder, out, explainer=Explainer(effnet))
    finally:
        torch.set_num_threads(threads)
    return read_jsonl(out / "results.jsonl")


def assert_complete_items(out: Path) -> None:
    """Every visible item folder is complete; every results line has its folder."""
    for d in (out / "items").iterdir():
        if not d.name.startswith("."):
            assert {p.name for p in d.iterdir()} == ITEM_FILES, d
    for r in read_jsonl(out / "results.jsonl"):
        assert (out / r["report"]).is_file() and (out / r["thumbnail"]).is_file()


def test_resume_after_sigkill_equals_an_uninterrupted_run(folder, reference, tmp_path):
    out = tmp_path / "out"
    cmd = [VLX, "batch", str(folder), "--out", str(out), "--no-progress", "--threads", "1"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and p.poll() is None:
        if len(read_jsonl(out / "results.jsonl")) >= 3:
            break
        time.sleep(0.02)
    assert p.poll() is None, "the batch finished before it could be killed: " + p.stderr.read().decode()
    p.send_signal(signal.SIGKILL)
    p.wait()
    killed_at = read_jsonl(out / "results.jsonl")
    assert 3 <= len(killed_at) < len(reference)
    assert_complete_items(out)

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{len(reference) - len(killed_at)} now" in again.stderr or len(killed_at) == len(reference)
    final = read_jsonl(out / "results.jsonl")
    assert [key(r) for r in final] == [key(r) for r in reference]       # same items, same order, no duplicates
    assert killed_at == final[:len(killed_at)]                          # what was finished is kept as it was
    assert_complete_items(out)
    assert not [d for d in (out / "items").iterdir() if d.name.startswith(".tmp-")]


def test_two_processes_give_the_same_results_as_one(folder, reference, tmp_path):
    out = tmp_path / "out2"
    p = subprocess.run([VLX, "batch", str(folder), "--out", str(out), "--processes", "2", "--threads", "1"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr + "".join(f.read_text() for f in (out / ".logs").glob("*.log"))
    final = read_jsonl(out / "results.jsonl")
    assert sorted(key(r) for r in final) == sorted(key(r) for r in reference)
    assert len({r["id"] for r in final}) == len(final)
    assert {r["rank"] for r in final} == {0, 1}
    assert all(r["rank"] == r["index"] % 2 for r in final)             # item i went to rank i % 2
    assert not list(out.glob("results-rank*.jsonl"))                    # merged
    assert (out / "index.html").is_file()
    assert_complete_items(out)


class Killed(BaseException):
    """Stands for the process dying at this point (not an Exception: nothing records it)."""


@pytest.fixture(scope="module")
def planted():
    return Explainer(planted_classifier(size=32))


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    for i in range(6):
        random_image(i, (40, 48)).save(d / f"t{i}.png")
    return d


@pytest.mark.parametrize("where, call", [("vlx.batch.shard.fsync_dir", 3), ("vlx.report.write_thumbnail", 2),
                                         ("vlx.report.write_explanation", 4), ("os.fsync", 5)])
def test_a_crash_at_any_step_loses_nothing(planted, tiny_folder, tmp_path, monkeypatch, where, call):
    ref = tmp_path / "ref"
    run_batch(tiny_folder, ref, explainer=planted)
    module, name = where.rsplit(".", 1)
    import importlib

    mod = importlib.import_module(module)
    real, count = getattr(mod, name), [0]

    def dying(*a, **k):
        count[0] += 1
        if count[0] == call:
            raise Killed
        return real(*a, **k)

    out = tmp_path / "out"
    monkeypatch.setattr(mod, name, dying)
    with pytest.raises(Killed):
        run_batch(tiny_folder, out, explainer=planted)
    monkeypatch.setattr(mod, name, real)
    before = read_jsonl(out / "results.jsonl")
    assert_complete_items(out)
    run_batch(tiny_folder, out, explainer=planted)
    after = read_jsonl(out / "results.jsonl")
    assert [key(r) for r in after] == [key(r) for r in read_jsonl(ref / "results.jsonl")]
    assert after[:len(before)] == before
    assert not [d for d in (out / "items").iterdir() if d.name.startswith(".")]


def test_a_partial_last_line_is_ignored_and_repaired(planted, tiny_folder, tmp_path):
    out = tmp_path / "out"
    run_batch(tiny_folder, out, explainer=planted)
    full = (out / "results.jsonl").read_bytes()
    lines = full.splitlines(keepends=True)
    (out / "results.jsonl").write_bytes(b"".join(lines[:2]) + lines[2][:40])     # killed mid-line
    assert len(read_jsonl(out / "results.jsonl")) == 2
    summary = run_batch(tiny_folder, out, explainer=planted)
    assert summary.new == len(lines) - 2 and summary.skipped == 2
    assert [key(r) for r in read_jsonl(out / "results.jsonl")] == [key(json.loads(l)) for l in lines]


def test_journal_appends_whole_lines_and_rejects_damage(tmp_path):
    p = tmp_path / "j.jsonl"
    p.write_bytes(b'{"id": "a"}\n{"id": "b"')
    assert repair_tail(p) == len(b'{"id": "b"')
    with Journal(p) as j:
        j.append({"id": "c", "text": "ünïcode \n newline"})
    assert [r["id"] for r in read_jsonl(p)] == ["a", "c"]
    p.write_bytes(b'{"id": "a"}\n{damaged\n{"id": "b"}\n')
    with pytest.raises(JournalError, match="j.jsonl:2"):
        read_jsonl(p)


def test_sharding_is_a_deterministic_partition(folder):
    items = discover(folder)
    parts = [shard(items, r, 3) for r in range(3)]
    assert sorted(it.id for p in parts for it in p) == sorted(it.id for it in items)
    assert all(it.index % 3 == r for r, p in enumerate(parts) for it in p)
    assert [it.id for it in discover(folder)] == [it.id for it in items]


def test_manifest_targets_ground_truth_and_bad_lines(planted, tmp_path):
    random_image(0, (32, 32)).save(tmp_path / "a.png")
    Image.fromarray(np.pad(np.ones((16, 16), np.uint8) * 255, ((0, 16), (0, 16)))).save(tmp_path / "m.png")
    lines = [{"path": "a.png", "target": "class 1", "ground_truth": {"class": "class 1", "mask": "m.png"}},
             {"path": "a.png", "ground_truth": [0, 0, 16, 16], "id": "my id"},
             {"path": "a.png", "target": "no such class"}, {"path": "gone.png"}]
    (tmp_path / "man.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n{oops\n")
    s = run_batch(tmp_path / "man.jsonl", tmp_path / "out", explainer=planted)
    assert (s.total, s.done, s.failed) == (5, 2, 3)
    res = read_jsonl(tmp_path / "out" / "results.jsonl")
    assert res[0]["class_index"] == 1 and res[0]["gt_class"] == 1 and "correct" in res[0]
    assert {"pointing-game", "energy-pointing-game"} <= set(res[0]["metrics"])
    assert res[1]["id"].startswith("my_id-") and "pointing-game" in res[1]["metrics"]
    reasons = " | ".join(e["error"] for e in read_jsonl(tmp_path / "out" / "errors.jsonl"))
    assert "unknown class" in reasons and "no such file" in reasons and "not valid JSON" in reasons
    html = (tmp_path / "out" / "index.html").read_text()
    assert "pointing-game" in html and "Failed items" in html


def test_index_escapes_untrusted_names(planted, tmp_path):
    evil = "<img src=x onerror=alert(1)>"                 # a legal file name (no slash)
    d = tmp_path / "in"
    d.mkdir()
    random_image(1, (32, 32)).save(d / f"{evil}.png")
    (d / f"{evil}-bad.png").write_bytes(b"")
    run_batch(d, tmp_path / "out", explainer=planted)
    html = (tmp_path / "out" / "index.html").read_text()
    assert evil not in html and "&lt;img src=x onerror=alert(1)&gt;.png" in html
    item = read_jsonl(tmp_path / "out" / "results.jsonl")[0]
    assert os.sep not in item["id"] and "<" not in item["id"]


def test_output_folder_inside_the_input_is_not_scanned(planted, tiny_folder, tmp_path):
    d = tmp_path / "in"
    shutil.copytree(tiny_folder, d)
    first = run_batch(d, d / "vlx-out", explainer=planted)
    second = run_batch(d, d / "vlx-out", explainer=planted)
    assert first.total == second.total == 6 and second.skipped == 6 and second.new == 0


def test_batch_takes_every_explain_option_in_one_and_two_processes(tmp_path):
    """`vlx batch` with a segmenter, an LLM verbalizer (the tiny LM), a describer and refinement:
    each worker process gets the whole configuration (as JSON) and gives what one process gives."""
    from vlx.testing.tiny_lm import tiny_causal_lm_folder

    lm = tiny_causal_lm_folder(tmp_path / "lm")
    src = small_folder(tmp_path / "in", n=3)
    opts = ["--segmenter", "superpixels", "--verbalizer", "llm", "--llm", f"hf:{lm}", "--describer", "offline",
            "--refine", "superpixels", "--style", "detailed", "--coverage", "0.4", "--device", "cpu",
            "--threads", "1", "--no-progress", "--json"]
    runs = {}
    for procs in ("1", "2"):
        out = tmp_path / f"out{procs}"
        p = subprocess.run([VLX, "batch", str(src), "--out", str(out), "--processes", procs, *opts],
                           capture_output=True, text=True, timeout=600)
        logs = "".join(f.read_text() for f in (out / ".logs").glob("*.log")) if (out / ".logs").exists() else ""
        assert p.returncode == 0, p.stderr + logs
        summary = json.loads(p.stdout)                   # --json: the summary, and only it, on stdout
        assert summary["done"] == 3 and summary["failed"] == 0
        runs[procs] = read_jsonl(out / "results.jsonl")
        for r in runs[procs]:
            e = json.loads((out / r["report"]).with_name("explanation.json").read_text())
            assert e["verbalization"]["verbalizer"] == "llm" and e["verbalization"]["style"] == "detailed"
            assert e["verbalization"]["check"]            # the LLM's text went through the verifier
            assert all(reg["description"] for reg in e["regions"])
            m = np.load((out / r["report"]).with_name("map.npy"))
            assert len(np.unique(m)) <= 200               # refined: constant inside each superpixel
    assert sorted(key(r) for r in runs["1"]) == sorted(key(r) for r in runs["2"])
    assert {r["rank"] for r in runs["2"]} == {0, 1}


def test_batch_options_round_trip_through_json():
    from vlx.batch import BatchOptions
    from vlx.config import ExplainConfig

    o = BatchOptions(ExplainConfig(method="integrated_gradients", method_options={"n_steps": 8}, labels=("a", "b"),
                                   refine="superpixels", shapley=True, describer=None), target="tabby",
                     contrast=3, max_pixels=10, threads=2)
    assert BatchOptions.from_json(json.loads(json.dumps(o.to_json()))) == o
