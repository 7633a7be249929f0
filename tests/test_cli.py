"""The `vlx` command through its real entry point: results on disk, and one clear line and a
non-zero exit for every bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

VLX = shutil.which("vlx", path=str(Path(sys.executable).parent)) or shutil.which("vlx")
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "images" / "chelsea.png"


def run(*args, cwd=None):
    assert VLX, "the vlx console script is not installed"
    return subprocess.run([VLX, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def assert_one_line_error(p, *needles):
    assert p.returncode != 0
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("vlx: error:") and "Traceback" not in p.stderr
    for n in needles:
        assert n in lines[0]


def test_help_teaches():
    p = run("explain", "--help")
    assert p.returncode == 0
    for word in ("--out", "--method", "--target", "--device", "--json", "Examples"):
        assert word in p.stdout


def test_explain_writes_report_json_and_map(tmp_path):
    p = run("explain", EXAMPLE, "--out", tmp_path, "--json")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    folder = tmp_path / "chelsea"
    assert json.loads((folder / "explanation.json").read_text()) == data
    assert (folder / "report.html").stat().st_size > 10_000
    m = np.load(folder / "map.npy")
    assert m.shape == (300, 451) and m.dtype == np.float32
    assert {"index", "label", "score"} <= set(data["target"])
    for r in data["regions"]:
        assert {"id", "bbox_xyxy", "area_fraction", "attribution_mass", "score_after_removal",
                "description"} <= set(r)
    assert {"style", "text", "facts"} <= set(data["verbalization"])


def _bad_inputs(tmp: Path) -> dict[str, tuple[Path, str]]:
    (tmp / "empty.jpg").write_bytes(b"")
    (tmp / "text.png").write_text("not an image at all\n" * 10)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp / "t.jpg")
    data = (tmp / "t.jpg").read_bytes()
    (tmp / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x17" * 100)
    Image.new("RGB", (300, 200)).save(tmp / "huge.png")
    (tmp / "adir").mkdir()
    return {
        "missing": (tmp / "missing.jpg", "no such file"),
        "directory": (tmp / "adir", "is a directory"),
        "zero-byte": (tmp / "empty.jpg", "empty"),
        "non-image": (tmp / "text.png", "not an image"),
        "truncated": (tmp / "truncated.jpg", "truncated or corrupt"),
        "corrupt": (tmp / "corrupt.png", "corrupt.png"),
        "over-pixel-limit": (tmp / "huge.png", "over the limit"),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "zero-byte", "non-image", "truncated", "corrupt",
                                  "over-pixel-limit"])
def test_bad_image_is_one_line(case, tmp_path):
    path, needle = _bad_inputs(tmp_path)[case]
    p = run("explain", path, "--out", tmp_path / "out", "--max-pixels", "50000")
    assert_one_line_error(p, needle)


@pytest.mark.parametrize("opt,value,needle", [
    ("--model", "resnet-9000", "unknown model"),
    ("--model", "hf:nobody/nothing", "not on this machine"),
    ("--method", "gradcan", "Did you mean gradcam"),
    ("--target", "tigr cat", "unknown class"),
    ("--target", "5000", "out of range"),
    ("--device", "tpu", "unknown device"),
    ("--layer", "no.such.layer", "layer"),
    ("--style", "poem", "unknown style"),
])
def test_bad_option_is_one_line(opt, value, needle, tmp_path):
    p = run("explain", EXAMPLE, "--out", tmp_path, opt, value)
    assert_one_line_error(p, needle)
    assert not (tmp_path / "chelsea").exists()


def test_debug_shows_the_traceback(tmp_path):
    p = run("explain", tmp_path / "missing.jpg", "--debug")
    assert p.returncode != 0 and "Traceback" in p.stderr


def test_odd_modes_are_converted_and_bad_items_do_not_stop_the_rest(tmp_path):
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    files = []
    for mode, ext in (("L", "png"), ("RGBA", "png"), ("P", "png"), ("CMYK", "jpg"), ("1", "bmp")):
        f = tmp_path / f"odd_{mode}.{ext}"
        rgb.convert(mode).save(f)
        files.append(f)
    sixteen = tmp_path / "odd_16bit.png"
    Image.fromarray((rng.integers(0, 65536, (40, 60))).astype(np.uint16)).save(sixteen)
    files.append(sixteen)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"")
    p = run("explain", *files[:3], bad, *files[3:], "--out", tmp_path / "out")
    assert p.returncode == 2
    assert "bad.jpg" in p.stderr and "1 of 7 images failed" in p.stderr
    for f in files:
        assert (tmp_path / "out" / f.stem / "report.html").exists(), f
    assert not (tmp_path / "out" / "bad").exists()


def test_same_stem_twice_gets_two_folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    shutil.copy(EXAMPLE, a / "cat.png")
    shutil.copy(EXAMPLE, b / "cat.png")
    p = run("explain", a / "cat.png", b / "cat.png", "--out", tmp_path / "out", "-q")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "out" / "cat" / "report.html").exists()
    assert (tmp_path / "out" / "cat_2" / "report.html").exists()


def test_methods_models_env():
    p = run("methods")
    assert p.returncode == 0 and "gradcam" in p.stdout and "needs a layer" in p.stdout
    p = run("models")
    assert p.returncode == 0 and "effnet-lite0" in p.stdout and "hf:" in p.stdout
    p = run("env")
    assert p.returncode == 0 and "torch" in p.stdout and "effnet-lite0 weights" in p.stdout and "present" in p.stdout


def test_misspelt_method_option_is_one_line(tmp_path):
    p = run("explain", EXAMPLE, "--out", tmp_path, "--method", "integrated_gradients", "--method-option", "n_stpes=10")
    assert_one_line_error(p, "n_stpes", "Did you mean n_steps?", "batch_size")
    assert not (tmp_path / "chelsea").exists()


def _options(command: str) -> set[str]:
    import typer

    from vlx.cli import app

    group = typer.main.get_command(app)
    return {o for p in group.commands[command].params if p.param_type_name == "option" for o in p.opts}


def test_batch_accepts_every_explain_option():
    ex, ba = _options("explain"), _options("batch")
    assert {"--segmenter", "--verbalizer", "--describer", "--refine", "--shapley", "--labels", "--method-option",
            "--top-k", "--contrast", "--llm"} <= ex
    assert ex - ba == set(), ex - ba
    assert ba - ex == {"--processes", "-p", "--threads", "--no-progress"}


def test_explain_options_and_config_fields_are_one_set():
    """Every ExplainConfig field is an option of `vlx explain` (as --field, or --field-option for
    an options dict): the command cannot lag behind the Python API."""
    import dataclasses

    from vlx.config import ExplainConfig

    ex = _options("explain")
    for f in dataclasses.fields(ExplainConfig):
        flag = "--" + f.name.replace("_options", "-option").replace("_", "-")
        assert flag in ex, flag


def test_methods_lists_every_family_and_json_is_json_only():
    p = run("methods", "--json")
    assert p.returncode == 0, p.stderr
    fams = json.loads(p.stdout)
    assert len(fams) == 7
    names = {r["name"] for rows in fams.values() for r in rows}
    assert {"gradcam", "tam", "affinity-masked", "deletion", "superpixels", "offline", "llm"} <= names
    p = run("methods")
    for title in ("MLLM methods", "few-shot explainers", "metrics", "segmenters", "describers", "verbalizers"):
        assert title in p.stdout
    for cmd in (("models", "--json"), ("env", "--json")):
        p = run(*cmd)
        assert p.returncode == 0 and json.loads(p.stdout)


def test_explain_json_with_several_images_is_a_list_and_human_text_goes_to_stderr(tmp_path):
    p = run("explain", EXAMPLE, EXAMPLE.with_name("coffee.jpg"), "--out", tmp_path, "--json")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert [d["image"]["id"] for d in data] == ["chelsea", "coffee"]
    assert "report.html" in p.stderr
