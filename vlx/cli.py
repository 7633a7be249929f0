"""The ``vlx`` command: each command parses its options and calls one library function. Heavy
imports (torch, transformers) happen inside commands, so ``--help`` stays fast.

Output convention: with ``--json`` (``--format json`` for ``vlx eval``) stdout holds JSON and only
JSON; every human line (summaries, progress, errors) goes to stderr. Every user error is one
line on stderr and a non-zero exit; ``--debug`` shows the traceback instead."""

from __future__ import annotations

import functools
import inspect
import json
import sys
from pathlib import Path
from typing import Any, Callable, List, Optional

import click
import typer
from rich.console import Console

app = typer.Typer(
    name="vlx",
    help="Explain image models and vision-language models in pictures and in words.\n\n"
         "Start with:  vlx explain cat.jpg --out out/   then open out/cat/report.html\n\n"
         "With --json, stdout holds JSON only; human text goes to stderr.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False)

DEBUG_HELP = "Show full tracebacks instead of one-line errors."
JSON_HELP = "Print JSON, and only JSON, on stdout (human lines go to stderr)."


def _say(line: str, quiet: bool = False) -> None:
    if not quiet:
        err.print(line, markup=False)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


# -- the explain options, shared by `vlx explain` and `vlx batch` (one ExplainConfig) -------------------
EXPLAIN_OPTIONS: list[tuple[str, Any, Any]] = [
    ("model", str, typer.Option("effnet-lite0", "--model", help="effnet-lite0 (embedded), hf:<hub id or folder>, "
                                "timm:<name>, torchvision:<name>, clip:hf:<CLIP id or folder> (zero-shot over "
                                "--labels), open_clip:<arch>=<weights>. See `vlx models`.")),
    ("method", str, typer.Option("auto", "--method", "-m", help="Attribution method; `vlx methods` lists them. auto: "
                                 "the model's default (EfficientNet-Lite0: fusedcam, Grad-CAM × LayerCAM; "
                                 "other models: gradcam).")),
    ("method_option", Optional[List[str]], typer.Option(None, "--method-option", help="A method option KEY=VALUE, "
                                                        "repeatable, e.g. --method-option n_steps=32 (checked "
                                                        "against the method's options).")),
    ("layer", str, typer.Option("auto", "--layer", help="Layer for CAM methods: auto, a dotted path "
                                "(blocks.-1.norm1) or a module name; several, comma-separated, average their maps.")),
    ("labels", Optional[str], typer.Option(None, "--labels", help="Label set of a zero-shot model (clip:hf:..., "
                                           "open_clip:...): 'cat,dog,car' or @labels.txt (one label a line).")),
    ("prompt_template", Optional[str], typer.Option(None, "--prompt-template", help="Prompt around each label for "
                                                    "zero-shot models (default: 'a photo of a {}.').")),
    ("device", str, typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps; several batch "
                                 "processes spread over the GPUs.")),
    ("style", str, typer.Option("short", "--style", help="Text style (short or detailed).")),
    ("verbalizer", str, typer.Option("template", "--verbalizer", help="A registered verbalizer (`vlx methods`): "
                                     "template is faithful by construction; llm writes with an LM and is checked "
                                     "against the measured facts.")),
    ("llm", str, typer.Option("smollm2", "--llm", help="LM for --verbalizer llm: smollm2 (embedded) or "
                              "hf:<hub id or folder>.")),
    ("coverage", float, typer.Option(0.5, "--coverage", min=0.05, max=1.0,
                                     help="Share of the positive attribution the regions must hold.")),
    ("segmenter", str, typer.Option("superpixels", "--segmenter", help="How regions are cut: a registered "
                                    "segmenter (`vlx methods`), hf:<SAM hub id or folder> or "
                                    "sam:vit_b=/path/ckpt.pth.")),
    ("segmenter_option", Optional[List[str]], typer.Option(None, "--segmenter-option", help="A segmenter option "
                                                           "KEY=VALUE, repeatable, e.g. n_segments=100.")),
    ("refine", str, typer.Option("none", "--refine", help="Average the map inside segments before cutting "
                                 "regions, so it follows segment edges: none, superpixels, felzenszwalb or sam "
                                 "(needs a SAM --segmenter). A display choice, not a faithfulness gain (deletion was "
                                 "reported worse for the CAM family; benchmarks/regions.py measures it).")),
    ("shapley", bool, typer.Option(False, "--shapley", help="Also compute Shapley values of the regions.")),
    ("describer", str, typer.Option("offline", "--describer", help="How regions are described: offline (embedded: "
                                    "the classifier's labels on the crop, colours, traits), clip:hf:<CLIP id or folder>, "
                                    "vlm:hf:<VLM id or folder> (BLIP, LLaVA, Idefics3/SmolVLM, Qwen2-VL; shown the "
                                    "region with the rest dimmed, class not named), vlm-class:hf:<...> (names the "
                                    "predicted class), vlm-outline:hf:<...> (whole image, region outlined) or none.")),
    ("top_k", int, typer.Option(5, "--top-k", min=1, help="How many predictions to report.")),
    ("metrics", bool, typer.Option(True, "--metrics/--no-metrics", help="Measure each map: deletion and insertion "
                                   "next to random maps (10 steps, 3 random maps; one sentence in the text and the "
                                   "report's trust table) and the model + method sanity check (computed once, "
                                   "cached in ~/.cache/vlx or $VLX_CACHE).")),
    ("target", Optional[str], typer.Option(None, "--target", "-t", help="Class index or name to explain (default: "
                                           "the top prediction; a batch manifest's own target wins), e.g. 285 or "
                                           "'tabby'.")),
    ("contrast", Optional[str], typer.Option(None, "--contrast", help="Explain 'target and not this class' (the "
                                             "logit difference), e.g. --contrast 'tiger cat'.")),
    ("max_pixels", int, typer.Option(80_000_000, "--max-pixels", help="Refuse images larger than this.")),
]
RUN_FIELDS = ("target", "contrast", "max_pixels")


def explain_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add every ``EXPLAIN_OPTIONS`` option to a command; the command receives them as one
    ``config`` (``vlx.config.ExplainConfig``) plus ``run`` (target, contrast, max_pixels)."""
    sig = inspect.signature(fn, eval_str=True)
    own = [p for p in sig.parameters.values() if p.name not in ("config", "run")]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=ann)
             for name, ann, opt in EXPLAIN_OPTIONS]

    @functools.wraps(fn)
    def wrapper(**kwargs: Any) -> Any:
        from vlx.config import ExplainConfig, parse_options

        values = {name: kwargs.pop(name) for name, _, _ in EXPLAIN_OPTIONS}
        run = {k: values.pop(k) for k in RUN_FIELDS}
        values["method_options"] = parse_options(values.pop("method_option"), "--method-option")
        values["segmenter_options"] = parse_options(values.pop("segmenter_option"), "--segmenter-option")
        return fn(config=ExplainConfig(**values).check(), run=run, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=own + added)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {}
    del wrapper.__wrapped__
    return wrapper


@app.command()
@explain_options
def explain(
    images: List[Path] = typer.Argument(..., help="Image files (JPEG, PNG, WebP, TIFF, BMP, ...).", show_default=False,
                                        readable=False),
    out_dir: Path = typer.Option(Path("vlx-out"), "--out", "-o", help="Folder for the results: OUT/<image stem>/"
                                 "{report.html, explanation.json, map.npy}."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP + " One explanation, or a list for several images."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print no summary lines."),
    debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP),
    config: Any = None, run: Any = None,
) -> None:
    """Explain a classifier's prediction on each image: a map, the regions that carry it, a
    sentence with the measured numbers, and a self-contained HTML report.

    \b
    Examples:
      vlx explain cat.jpg
      vlx explain photos/*.jpg --out results --method gradcam --style detailed
      vlx explain cat.jpg --target "tiger cat" --json
      vlx explain cat.jpg --method integrated_gradients --method-option n_steps=32
      vlx explain cat.jpg --model hf:./my-vit-folder --device cuda
      vlx explain cat.jpg --segmenter hf:facebook/sam-vit-base --refine sam
      vlx explain cat.jpg --describer vlm:hf:Salesforce/blip-image-captioning-base
      vlx explain cat.jpg --model clip:hf:openai/clip-vit-base-patch32 --labels "cat,dog,car"
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from vlx.run import explain_files

    show = len(images) > 1 and not quiet
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, disable=not show, transient=False) as progress:
        task = progress.add_task("explaining", total=len(images))

        def on_item(item: Any) -> None:
            progress.advance(task)
            if item.error is not None:
                progress.console.print(f"vlx: error: {item.error}", markup=False, style="red")
            elif not quiet:
                progress.console.print(f"{item.folder.name}: {item.text}\n  → {item.folder / 'report.html'}",
                                       markup=False)

        result = explain_files(images, out_dir, config, run["target"], run["contrast"], run["max_pixels"],
                               strict=debug, on_item=on_item)
    if as_json:
        _print_json(result.to_json())
    if result.failed:
        err.print(f"vlx: {result.failed} of {len(images)} images failed; the others are in {out_dir}.")
        raise typer.Exit(2)


@app.command()
@explain_options
def batch(
    source: Path = typer.Argument(..., help="A folder (scanned recursively for image files) or a JSONL manifest: "
                                  '{"path": ..., "target": ..., "ground_truth": ...} per line.', show_default=False),
    out_dir: Path = typer.Option(Path("vlx-batch"), "--out", "-o", help="Folder for results.jsonl, errors.jsonl, "
                                 "index.html and items/<id>/."),
    processes: int = typer.Option(1, "--processes", "-p", min=1, help="Start this many worker processes here "
                                  "(or run the command under `accelerate launch`)."),
    threads: int = typer.Option(0, "--threads", min=0, help="Torch threads per process (0: cores / processes)."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP + " The batch summary."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print no summary."),
    debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP + " Also stops at the first failed item."),
    config: Any = None, run: Any = None,
) -> None:
    """Explain every image of a folder or manifest, with every option of `vlx explain`: one report
    per item, results.jsonl, errors.jsonl (bad items are recorded, the rest go on) and a sortable
    index.html. Rerun the same command to resume: finished items are skipped, failed ones retried.

    \b
    Examples:
      vlx batch photos/ --out runs/photos
      vlx batch photos/ --segmenter superpixels --verbalizer llm --refine superpixels --processes 2
      vlx batch manifest.jsonl --out runs/m --processes 4 --threads 1
      accelerate launch --multi_gpu --num_processes 8 -m vlx.cli batch photos/ --out runs/p --device cuda
      torchrun --nproc_per_node 4 -m vlx.cli batch photos/ --out runs/p --threads 1

    Exit status 2 when some items failed (0 under a launcher, whose ranks must not look crashed).
    """
    from vlx.batch import BatchOptions, run_batch

    options = BatchOptions(explain=config, target=run["target"], contrast=run["contrast"],
                           max_pixels=run["max_pixels"], threads=threads)
    summary = run_batch(source, out_dir, options, processes=processes,
                        progress=not no_progress and not quiet and not as_json, debug=debug)
    if summary.rank != 0:
        return
    if as_json:
        _print_json(summary.to_json())
    if not quiet:
        rate = f" at {summary.rate_per_min:.1f} images/min" if summary.new else ""
        _say(f"vlx: {summary.done} of {summary.total} items done ({summary.new} now{rate}, "
             f"{summary.skipped} from before), {summary.failed} failed.")
        for e in summary.errors[:5]:
            err.print(f"  {e['error']}", markup=False, style="red")
        if summary.failed > 5:
            _say(f"  ... and {summary.failed - 5} more in {out_dir / 'errors.jsonl'}")
        _say(f"  results: {out_dir / 'results.jsonl'}\n  index:   {out_dir / 'index.html'}")
    if summary.failed and not summary.launched:
        raise typer.Exit(2)


@app.command()
def pdf(
    report: Path = typer.Argument(..., help="A report.html (or index.html) written by vlx.", show_default=False),
    out_file: Optional[Path] = typer.Option(None, "--out", "-o", help="The PDF to write (default: beside the "
                                            "report, .pdf)."),
    engine: str = typer.Option("auto", "--engine", help="auto, chromium (headless --print-to-pdf) or weasyprint "
                               "(the pdf extra)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP),
) -> None:
    """Print an HTML report to PDF (A4), from the same content."""
    from vlx.report.pdf import html_to_pdf

    path = html_to_pdf(report, out_file or report.with_suffix(".pdf"), engine)
    if as_json:
        _print_json({"pdf": str(path)})
    else:
        out.print(str(path), markup=False)


@app.command()
def methods(as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
            debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP)) -> None:
    """List every registered component: attribution methods (what each needs and supports), MLLM
    methods, few-shot explainers, metrics, segmenters, describers and verbalizers."""
    from rich.table import Table

    from vlx.info import families

    fams = families()
    if as_json:
        _print_json(fams)
        return
    for title, rows in fams.items():
        flags = rows and "needs_layer" in rows[0]
        cols = ("name", "needs a layer", "needs gradients", "signed", "what it does") if flags else ("name", "what it does")
        table = Table(*cols, title=title, title_justify="left", box=None)
        for r in rows:
            cells = (r["name"], _yes(r["needs_layer"]), _yes(r["needs_gradients"]), _yes(r["signed"])) if flags \
                else (r["name"],)
            table.add_row(*cells, r["summary"])
        out.print(table)


@app.command()
def models(
    layers: Optional[str] = typer.Option(None, "--layers", help="Print the layers of this model spec "
                                         "(for --layer), e.g. --layers effnet-lite0."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP),
) -> None:
    """List the model specs vlx can load, or the layers of one model."""
    if layers:
        from vlx.info import model_layers

        rows = model_layers(layers)
        if as_json:
            _print_json(rows)
            return
        for r in rows:
            out.print(f"{r['name']}  [dim]{r['type']}[/dim]{'  ← default' if r['default'] else ''}")
        return
    from vlx.models import MODEL_SPECS

    if as_json:
        _print_json(dict(MODEL_SPECS))
        return
    for spec, what in MODEL_SPECS.items():
        out.print(f"[bold]{spec}[/bold]  {what}")


@app.command()
def env(as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
        debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP)) -> None:
    """Show versions, devices, optional extras and embedded weights (paste it into bug reports)."""
    from vlx.info import environment

    rows = environment()
    if as_json:
        _print_json(rows)
        return
    for k, v in rows.items():
        out.print(f"[bold]{k:22}[/bold] {v}", markup=True)


@app.command()
def fewshot(
    support: List[str] = typer.Option(..., "--support", "-s", help="A support image and its mask, IMG:MASK "
                                      "(repeat for more shots; the mask is foreground where >= half its maximum).",
                                      show_default=False),
    query: Path = typer.Option(..., "--query", help="The query image to segment.", show_default=False),
    more: Optional[List[str]] = typer.Argument(None, help="More IMG:MASK support pairs.", show_default=False),
    out_dir: Path = typer.Option(Path("vlx-fewshot"), "--out", "-o", help="Folder for report.html, result.json, "
                                 "support_maps.npz and prediction.png."),
    explainer: str = typer.Option("affinity-masked", "--explainer", "-e", help="A few-shot explainer; `vlx methods` "
                                  "lists them."),
    query_mask: Optional[Path] = typer.Option(None, "--query-mask", help="Ground truth of the query, for mIoU "
                                              "(default: measure against the model's own prediction)."),
    metrics: bool = typer.Option(True, "--metrics/--no-metrics", help="Measure support deletion/insertion and "
                                 "mIoULoss@1%."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
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
        _print_json(result.to_json())
    _say(f"{result.diagnosis.sentence}\n  → {paths['report']}", quiet)


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
    fmt: str = typer.Option("table", "--format", "-f", help="table, markdown, csv or json (on stdout; json is "
                            "JSON only)."),
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
    say = None if quiet else _say
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
        _say(f"vlx: {failed} evaluation(s) failed (one line each above); the others are in the table.")
        raise typer.Exit(2)


@app.command()
def ask(
    image: Path = typer.Argument(..., help="An image file.", show_default=False),
    question: str = typer.Argument(..., help="The question, e.g. \"What is in the image?\"", show_default=False),
    model: str = typer.Option("demo", "--model", help="demo (embedded EfficientNet-Lite0 + SmolLM2 composition; "
                              "a demo, not proof of faithfulness) or hf:<hub id or folder> (LLaVA-1.5, LLaVA-NeXT, "
                              "Qwen2-VL, Qwen2.5-VL, Idefics3, SmolVLM)."),
    method: str = typer.Option("tam", "--method", "-m", help="An MLLM method; `vlx methods` lists them."),
    msea: bool = typer.Option(False, "--msea", help="Aggregate the maps over several scales (MSEA)."),
    scales: str = typer.Option("1,0.75,0.5", "--scales", help="MSEA scales, comma-separated."),
    arc: bool = typer.Option(False, "--arc", help="With tam, weight the interference subtraction by context "
                             "relevance (ARC); the relevance itself is always shown."),
    layer: Optional[int] = typer.Option(None, "--layer", help="Hidden-state index for llavacam (default: middle)."),
    method_option: Optional[List[str]] = typer.Option(None, "--method-option", help="A method option KEY=VALUE, "
                                                      "repeatable (checked against the method's options)."),
    tokens: Optional[str] = typer.Option(None, "--tokens", help="Answer token indices to explain, e.g. 0,2 "
                                         "(default: every word)."),
    metrics: bool = typer.Option(True, "--metrics/--no-metrics", help="Measure each token map's deletion / "
                                 "insertion next to 3 random maps (10 steps; 22 forward passes per token plus 66 "
                                 "shared) and say in the page whether it beats them."),
    out_dir: Path = typer.Option(Path("vlx-ask"), "--out", "-o", help="Folder for report.html and answer.json."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print no summary lines."),
    debug: bool = typer.Option(False, "--debug", help=DEBUG_HELP),
) -> None:
    """Answer a question about an image with a multimodal LLM and show, for each answer word,
    where in the image it came from and which earlier words it leaned on.

    \b
    Examples:
      vlx ask cat.jpg "What is in the image?"
      vlx ask cat.jpg "What colour is the cat?" --model hf:llava-hf/llava-1.5-7b-hf --method tam --arc --msea
    """
    from vlx.config import parse_options
    from vlx.errors import UsageError
    from vlx.mllm.run import ask_file, summary_lines

    try:
        scale_list = [float(s) for s in scales.split(",") if s.strip()]
        token_list = [int(t) for t in tokens.split(",") if t.strip()] if tokens else None
    except ValueError:
        raise UsageError("--scales takes numbers like 1,0.75,0.5 and --tokens indices like 0,2.") from None
    if not scale_list or any(s <= 0 for s in scale_list):
        raise UsageError("--scales needs positive numbers, e.g. 1,0.75,0.5.")
    options = parse_options(method_option)
    if layer is not None:
        options["layer"] = layer
    result, path = ask_file(image, question, model, method, out_dir, device, tokens=token_list, msea=msea,
                            scales=scale_list, arc=arc, metrics=metrics, **options)
    for line in summary_lines(result) + [f"  → {path}"]:
        _say(line, quiet)
    if as_json:
        _print_json(result.to_json())


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
