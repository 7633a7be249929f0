"""Real checkpoints load the way users load them: hub ids from an offline Hugging Face cache
(tiny replicas of the real repositories under their real ids, ``HF_HUB_OFFLINE=1``), folders
saved by today's ``save_pretrained`` and folders in the older layout, through the CLI; and
every loader failure is a one-line error that names the missing file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

VLX = shutil.which("vlx", path=str(Path(sys.executable).parent)) or shutil.which("vlx")
SAM, CLIP, BLIP = "facebook/sam-vit-base", "openai/clip-vit-base-patch32", "Salesforce/blip-image-captioning-base"
LLAVA, QWEN, SMOL = "llava-hf/llava-1.5-7b-hf", "Qwen/Qwen2-VL-2B-Instruct", "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture(scope="session")
def hub(tmp_path_factory):
    """``(env, hub cache folder, replicas folder)``: the six replicas in a fresh ``HF_HOME``."""
    from vlx.testing.tiny_repos import build_hub_cache

    root = tmp_path_factory.mktemp("hf")
    cache = build_hub_cache(root / "home", root / "work")
    env = {**os.environ, "HF_HOME": str(root / "home"), "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                          os.environ.get("PYTHONPATH", "")])}
    env.pop("HF_HUB_CACHE", None)
    env.pop("TRANSFORMERS_CACHE", None)
    return env, cache, root / "work"


@pytest.fixture(scope="session")
def small_image(tmp_path_factory):
    from PIL import Image
    from skimage import data

    path = tmp_path_factory.mktemp("img") / "cat.png"
    Image.fromarray(data.chelsea()).resize((96, 64)).save(path)
    return path


def vlx(env, *args, cwd=None):
    return subprocess.run([VLX, *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def _json(p: subprocess.CompletedProcess) -> dict:
    assert p.returncode == 0, p.stderr[-2000:]
    assert "internal error" not in p.stderr
    start = next(i for i, line in enumerate(p.stdout.splitlines(keepends=True)) if line.startswith("{"))
    text = "".join(p.stdout.splitlines(keepends=True)[start:])
    return json.JSONDecoder().raw_decode(text)[0]


def test_cache_has_the_layout_huggingface_hub_reads(hub):
    from huggingface_hub import scan_cache_dir

    _, cache, _ = hub
    info = scan_cache_dir(cache)
    assert not info.warnings
    repos = {r.repo_id: r for r in info.repos}
    assert set(repos) == {SAM, CLIP, BLIP, LLAVA, QWEN, SMOL}
    for r in repos.values():
        assert {"main"} == set().union(*(rev.refs for rev in r.revisions))
        names = {f.file_name for rev in r.revisions for f in rev.files}
        assert {"config.json", "model.safetensors"} <= names
    # the older layout, as the repositories hold it: no processor_config.json except LLaVA's
    assert "preprocessor_config.json" in {f.file_name for rev in repos[SAM].revisions for f in rev.files}
    assert "processor_config.json" not in {f.file_name for rev in repos[SAM].revisions for f in rev.files}


LOAD_SCRIPT = r"""
import json, sys
import torch
from huggingface_hub import snapshot_download
from safetensors.torch import load_file
from vlx.models import load_classifier
from vlx.models.clip import load_clip
from vlx.models.llm import load_llm
from vlx.models.segmenter import load_segmenter
from vlx.models.vlm import load_vlm
from vlx.mllm.hf import load_hf_mllm

def mismatches(module, repo):
    # saved names may differ from the module's (transformers converts e.g. LLaVA's on load):
    # every saved tensor must equal some parameter or buffer of the same shape
    saved = load_file(snapshot_download(repo) + "/model.safetensors")
    by_shape = {}
    for v in module.state_dict().values():
        by_shape.setdefault(tuple(v.shape), []).append(v.float())
    bad = [k for k, v in saved.items()
           if not any(torch.equal(v.float(), t) for t in by_shape.get(tuple(v.shape), []))]
    return len(saved), bad

out = {}
seg = load_segmenter("hf:facebook/sam-vit-base")
out["sam"] = [*mismatches(seg.model, "facebook/sam-vit-base"), seg.longest, list(seg.mean.flatten().tolist())]
clip = load_clip("hf:openai/clip-vit-base-patch32", "cpu")
out["clip"] = [*mismatches(clip.model, "openai/clip-vit-base-patch32"), list(clip.preprocess.size),
               list(clip.preprocess.mean), clip.tokenizer("a cat")["input_ids"]]
zs = load_classifier("clip:hf:openai/clip-vit-base-patch32", "cpu", labels="cat,dog")
out["clip_zs"] = [zs.labels, list(zs.input_size)]
vlm = load_vlm("hf:Salesforce/blip-image-captioning-base", "cpu")
out["blip"] = [*mismatches(vlm.model, "Salesforce/blip-image-captioning-base"), type(vlm.processor).__name__,
               str(vlm.processor.image_processor.size)]
for key, repo in (("llava", "llava-hf/llava-1.5-7b-hf"), ("qwen", "Qwen/Qwen2-VL-2B-Instruct")):
    m = load_hf_mllm(repo, torch.device("cpu"))
    out[key] = [*mismatches(m.model, repo), m.family, m.image_token_id,
                m.tokenizer.convert_ids_to_tokens(m.image_token_id)]
llm = load_llm("hf:HuggingFaceTB/SmolLM2-135M-Instruct", "cpu")
ids = llm.prompt_ids([{"role": "user", "content": "hi"}])[0].tolist()
out["smol"] = [*mismatches(llm.model, "HuggingFaceTB/SmolLM2-135M-Instruct"),
               llm.tokenizer.decode(ids), llm.tokenizer.eos_token_id]
print(json.dumps(out))
"""


def test_hub_ids_load_their_own_weights_and_processors(hub):
    """Each id loads offline with every saved tensor in place (no silently re-initialised
    weights, e.g. from Qwen2-VL's flat config) and the processor settings of its files."""
    env, _, _ = hub
    p = subprocess.run([sys.executable, "-c", LOAD_SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    for key in ("sam", "clip", "blip", "llava", "qwen", "smol"):
        n, bad = out[key][0], out[key][1]
        assert n > 10 and bad == [], (key, bad[:5])
    assert out["sam"][2] == 64 and out["sam"][3] == pytest.approx([0.485, 0.456, 0.406])
    # CLIPFeatureExtractor-era file: size 32, crop_size 32 (integers) → a 32 × 32 input
    assert out["clip"][2] == [32, 32] and out["clip"][3] == pytest.approx([0.48145466, 0.4578275, 0.40821073])
    assert out["clip"][4][0] == 400 and out["clip"][4][-1] == 401  # <|startoftext|> ... <|endoftext|>
    assert out["clip_zs"] == [["cat", "dog"], [32, 32]]
    assert out["blip"][2] == "BlipProcessor" and "height=32" in out["blip"][3]  # from `"size": 32`
    assert out["llava"][2:] == ["llava", out["llava"][3], "<image>"]
    assert out["qwen"][2] == "qwen2_vl" and out["qwen"][4] == "<|image_pad|>"
    assert out["smol"][2].startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert out["smol"][2].endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    assert out["smol"][3] == 2


def test_explain_with_hub_ids_offline(hub, small_image, tmp_path):
    """One `vlx explain` run: CLIP classifier, SAM segmenter, BLIP describer, SmolLM2 verbalizer."""
    env, _, _ = hub
    d = _json(vlx(env, "explain", small_image, "--model", f"clip:hf:{CLIP}", "--labels", "cat,dog,car",
                  "--segmenter", f"hf:{SAM}", "--describer", f"vlm:hf:{BLIP}", "--verbalizer", "llm",
                  "--llm", f"hf:{SMOL}", "--json", "-q", "-o", tmp_path))
    assert d["model"] == f"clip:hf:{CLIP}"
    assert d["regions"] and all(r["source"] == "sam" for r in d["regions"])
    assert all(r["description"]["source"] == f"vlm:hf:{BLIP}" for r in d["regions"])
    assert d["verbalization"]["check"]["llm"] == f"hf:{SMOL}"


@pytest.mark.parametrize("repo", [LLAVA, QWEN])
def test_ask_with_hub_ids_offline(hub, small_image, tmp_path, repo):
    env, _, _ = hub
    d = _json(vlx(env, "ask", small_image, "What colour is the cat?", "--model", f"hf:{repo}", "--json",
                  "-o", tmp_path))
    assert d["model"] == f"hf:{repo}"
    assert d["tokens"], d.keys()


def test_missing_hub_id_and_missing_cached_file_are_one_line_errors(hub, small_image, tmp_path):
    env, cache, _ = hub
    p = vlx(env, "explain", small_image, "--segmenter", "hf:facebook/sam-vit-huge", "-o", tmp_path)
    assert p.returncode == 2 and "internal error" not in p.stderr
    assert "hf download facebook/sam-vit-huge" in p.stderr
    # a second cache with the SAM repository but without its processor file
    home = tmp_path / "home2"
    shutil.copytree(cache / "models--facebook--sam-vit-base", home / "hub" / "models--facebook--sam-vit-base",
                    symlinks=True)
    for f in (home / "hub").rglob("preprocessor_config.json"):
        f.unlink()
    p = vlx({**env, "HF_HOME": str(home)}, "explain", small_image, "--segmenter", f"hf:{SAM}", "-o", tmp_path)
    assert p.returncode == 2 and "internal error" not in p.stderr, p.stderr
    assert "preprocessor_config.json" in p.stderr and len(p.stderr.strip().splitlines()) == 1


# --------------------------------------------------------------- folders: today's and yesterday's layout
def _sam_today(folder: Path) -> Path:
    """The issue's example: a tiny SamModel + SamProcessor saved by the installed transformers
    (today: ``processor_config.json`` with the image processor nested, no preprocessor_config.json)."""
    from transformers import SamImageProcessorPil, SamModel, SamProcessor

    from vlx.testing.tiny_sam import tiny_sam_config

    SamModel(tiny_sam_config(image_size=48)).save_pretrained(folder)
    ip = SamImageProcessorPil(size={"longest_edge": 48}, pad_size={"height": 48, "width": 48},
                              image_mean=[0.4, 0.5, 0.6], image_std=[0.2, 0.25, 0.3])
    SamProcessor(image_processor=ip).save_pretrained(folder)
    return folder


def test_issue_example_sam_folder_saved_today_with_clip_describer_from_the_cache(hub, small_image, tmp_path):
    """`vlx explain cat.png --segmenter hf:./sam` on the issue's folder (it failed with an
    internal HFValidationError), in the same run as the CLIP describer by hub id, offline."""
    env, _, _ = hub
    folder = _sam_today(tmp_path / "sam")
    assert (folder / "processor_config.json").exists() and not (folder / "preprocessor_config.json").exists()
    d = _json(vlx(env, "explain", small_image, "--segmenter", "hf:./sam", "--describer", f"clip:hf:{CLIP}",
                  "--json", "-q", "-o", "out", cwd=tmp_path))
    assert d["regions"] and all(r["source"] == "sam" for r in d["regions"])
    assert all(r["description"]["source"] == f"clip:hf:{CLIP}" for r in d["regions"])
    from vlx.models.segmenter import load_segmenter

    seg = load_segmenter(f"hf:{folder}")
    assert seg.longest == 48 and seg.mean.flatten().tolist() == pytest.approx([0.4, 0.5, 0.6])
    assert seg.std.flatten().tolist() == pytest.approx([0.2, 0.25, 0.3])


def test_folders_saved_today_load_their_processor_settings(tmp_path):
    """Classifier (image processor alone → preprocessor_config.json) and CLIP (a whole
    CLIPProcessor → processor_config.json): settings come back as saved."""
    import torch
    from transformers import (CLIPImageProcessorPil, CLIPModel, CLIPProcessor, ViTConfig, ViTForImageClassification,
                              ViTImageProcessorPil)

    from vlx.models import load_classifier
    from vlx.models.clip import load_clip
    from vlx.testing.tiny_repos import tiny_repo_folder

    vit = tmp_path / "vit"
    ViTForImageClassification(ViTConfig(image_size=24, patch_size=8, hidden_size=16, num_hidden_layers=1,
                                        num_attention_heads=2, intermediate_size=32, num_labels=2)).save_pretrained(vit)
    ViTImageProcessorPil(size={"height": 24, "width": 24}, image_mean=[0.1, 0.2, 0.3],
                         image_std=[0.4, 0.5, 0.6]).save_pretrained(vit)
    clf = load_classifier(f"hf:{vit}", "cpu")
    assert clf.preprocess.size == (24, 24) and clf.preprocess.mean == pytest.approx((0.1, 0.2, 0.3))

    old = tiny_repo_folder(CLIP, tmp_path / "clip-old")
    model, tok = CLIPModel.from_pretrained(old), load_clip(f"hf:{old}", "cpu").tokenizer
    today = tmp_path / "clip-today"
    model.save_pretrained(today)
    ip = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                               image_mean=[0.3, 0.3, 0.3], image_std=[0.2, 0.2, 0.2])
    CLIPProcessor(image_processor=ip, tokenizer=tok).save_pretrained(today)
    assert (today / "processor_config.json").exists()
    clip = load_clip(f"hf:{today}", "cpu")
    assert clip.preprocess.size == (32, 32) and clip.preprocess.mean == pytest.approx((0.3, 0.3, 0.3))
    img = np.zeros((20, 30, 3), np.uint8)
    assert torch.isfinite(clip.image_features([img])).all()


@pytest.mark.parametrize("repo", [SAM, CLIP, BLIP, LLAVA, QWEN, SMOL])
def test_replica_folders_in_the_older_layout_load(hub, repo):
    """The same replicas as plain folders (``preprocessor_config.json``, ``chat_template.json``)."""
    import torch

    _, _, work = hub
    folder = work / repo.replace("/", "--")
    from vlx.mllm.hf import load_hf_mllm
    from vlx.models.clip import load_clip
    from vlx.models.llm import load_llm
    from vlx.models.segmenter import load_segmenter
    from vlx.models.vlm import load_vlm

    cpu = torch.device("cpu")
    loaders = {SAM: lambda: load_segmenter(f"hf:{folder}"), CLIP: lambda: load_clip(f"hf:{folder}", "cpu"),
               BLIP: lambda: load_vlm(f"hf:{folder}", "cpu"), LLAVA: lambda: load_hf_mllm(str(folder), cpu),
               QWEN: lambda: load_hf_mllm(str(folder), cpu), SMOL: lambda: load_llm(f"hf:{folder}", "cpu")}
    m = loaders[repo]()
    assert m.name.endswith(folder.name)


@pytest.mark.parametrize("missing,kind", [
    ("preprocessor_config.json", "sam"), ("config.json", "sam"), ("model.safetensors", "sam"),
    ("preprocessor_config.json", "clip"), ("tokenizer.json", "llm"), ("chat_template.json", "qwen")])
def test_folder_missing_a_file_is_an_error_naming_it(hub, tmp_path, missing, kind):
    import torch

    from vlx.errors import VlxError
    from vlx.mllm.hf import load_hf_mllm
    from vlx.models.clip import load_clip
    from vlx.models.llm import load_llm
    from vlx.models.segmenter import load_segmenter

    _, _, work = hub
    repo = {"sam": SAM, "clip": CLIP, "llm": SMOL, "qwen": QWEN}[kind]
    folder = tmp_path / "m"
    shutil.copytree(work / repo.replace("/", "--"), folder)
    (folder / missing).unlink()
    if missing == "tokenizer.json":
        for f in ("tokenizer_config.json", "vocab.json", "merges.txt"):
            (folder / f).unlink(missing_ok=True)
    load = {"sam": lambda: load_segmenter(f"hf:{folder}"), "clip": lambda: load_clip(f"hf:{folder}", "cpu"),
            "llm": lambda: load_llm(f"hf:{folder}", "cpu"),
            "qwen": lambda: load_hf_mllm(str(folder), torch.device("cpu"))}[kind]
    if kind == "qwen":  # the tokenizer's own chat template remains: a processor file is optional
        assert load().processor is not None
        return
    with pytest.raises(VlxError) as e:
        load()
    assert missing in str(e.value) and "\n" not in str(e.value)


def test_cli_folder_missing_a_file_is_one_line(hub, small_image, tmp_path):
    _, _, work = hub
    folder = tmp_path / "sam"
    shutil.copytree(work / SAM.replace("/", "--"), folder)
    (folder / "preprocessor_config.json").unlink()
    p = vlx(os.environ, "explain", small_image, "--segmenter", "hf:./sam", "-q", "-o", "out", cwd=tmp_path)
    assert p.returncode == 2, p.stderr[-2000:]
    assert p.stderr.strip().splitlines() == [p.stderr.strip()] and "internal error" not in p.stderr
    assert "processor_config.json or preprocessor_config.json" in p.stderr


def test_truncated_weights_are_a_one_line_error(hub, tmp_path):
    """A half-downloaded safetensors file: the library's SafetensorError becomes a vlx error."""
    from vlx.errors import ModelNotAvailable
    from vlx.models.segmenter import load_segmenter

    _, _, work = hub
    folder = tmp_path / "sam"
    shutil.copytree(work / SAM.replace("/", "--"), folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelNotAvailable, match="could not be loaded: SafetensorError") as e:
        load_segmenter(f"hf:{folder}")
    assert e.value.__cause__ is not None and "\n" not in str(e.value)
