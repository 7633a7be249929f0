"""Attribution speed and memory: vlx against captum, pytorch-grad-cam and shap (same
definitions), on EfficientNet-Lite0 with skimage's chelsea and coffee as one batch of 2.

pytorch-grad-cam needs torchvision, which does not import beside the light CPU torch of .venv:
run this file from the benchmark environment (`make bench-env`, then
`.bench-venv/bin/python benchmarks/attribution.py`) to include it; elsewhere it is skipped
with a note.

For every method: wall time, its ratio to one plain forward+backward pass of the batch, the
ratio to captum's implementation where captum has one, and the peak resident memory added during
the call (sampled from /proc). Perturbation methods also report masked samples per second against
plain batched forward throughput at the same batch size (``--batch-size``).

    .venv/bin/python benchmarks/attribution.py [--methods gradcam,rise] [--repeats 2] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Callable

import numpy as np
import torch

import vlx.attribute  # noqa: F401
from vlx.attribute.base import get_method
from vlx.attribute.perturb import make_baseline, superpixel_players
from vlx.models import load_classifier
from vlx.registry import METHODS
from vlx.types import ClassTarget


class PeakRSS:
    """Peak resident set size (bytes) above the level at entry, sampled every 2 ms."""

    def __enter__(self) -> "PeakRSS":
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._watch, daemon=True)
        self._t.start()
        return self

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(0.002)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss())

    @property
    def added_mb(self) -> float:
        return (self.peak - self.base) / 2 ** 20


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Best wall time over ``repeats`` (a first run over 5 s is not repeated) and the peak added
    memory (MB) of the first run."""
    best, mem = float("inf"), 0.0
    for r in range(repeats):
        if r and best > 5:
            break
        with PeakRSS() as p:
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
        best = min(best, dt)
        mem = p.added_mb if r == 0 else mem
    return best, mem


def captum_runners(model, x, targets, layer_module, bs: int) -> dict[str, Callable[[], object]]:
    """captum implementations of the same definitions as vlx's defaults."""
    from captum import attr as ca

    fwd, t = model.logits, list(targets)
    players = [superpixel_players(model, x[i], 32) for i in range(x.shape[0])]
    base = torch.cat([make_baseline(x[i:i + 1], "mean") for i in range(x.shape[0])])

    def surrogate(cls, **kw):
        def go():
            for i in range(x.shape[0]):
                mask = players[i][None, None].expand_as(x[i:i + 1])
                cls(fwd, **kw).attribute(x[i:i + 1], baselines=base[i:i + 1], target=t[i], feature_mask=mask,
                                         n_samples=512, perturbations_per_eval=bs)
        return go

    win = max(1, x.shape[-1] // 8)
    return {
        "gradcam": lambda: ca.LayerGradCam(fwd, layer_module).attribute(x, target=t, relu_attributions=True),
        "saliency": lambda: ca.Saliency(fwd).attribute(x, target=t, abs=True),
        "input_x_gradient": lambda: ca.InputXGradient(fwd).attribute(x, target=t),
        "integrated_gradients": lambda: ca.IntegratedGradients(fwd).attribute(
            x, baselines=torch.zeros_like(x), target=t, n_steps=64, internal_batch_size=bs),
        "smoothgrad": lambda: ca.NoiseTunnel(ca.Saliency(fwd)).attribute(
            x, nt_type="smoothgrad", nt_samples=32, nt_samples_batch_size=max(1, bs // 2),
            stdevs=0.15 * float(x.max() - x.min()), target=t, abs=True),
        "occlusion": lambda: ca.Occlusion(fwd).attribute(
            x, sliding_window_shapes=(3, win, win), strides=(3, win // 2, win // 2), baselines=0.0, target=t,
            perturbations_per_eval=bs),
        "lime": surrogate(ca.Lime),
        "kernelshap": surrogate(ca.KernelShap),
    }


def gradcam_runners(model, x, targets, layer_module, bs: int) -> dict[str, Callable[[], object]]:
    """pytorch-grad-cam's CAMs on the same layer and targets (needs torchvision)."""
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    classes = {"gradcam": pgc.GradCAM, "gradcampp": pgc.GradCAMPlusPlus, "xgradcam": pgc.XGradCAM,
               "hirescam": pgc.HiResCAM, "layercam": pgc.LayerCAM, "eigencam": pgc.EigenCAM,
               "scorecam": pgc.ScoreCAM, "ablationcam": pgc.AblationCAM}
    tg = [ClassifierOutputTarget(int(t)) for t in targets]

    def runner(cls):
        def go():
            kw = {"batch_size": bs} if cls is pgc.AblationCAM else {}
            cam = cls(model=model.module, target_layers=[layer_module], **kw)
            cam.batch_size = bs
            try:
                cam(input_tensor=x, targets=tg)
            finally:
                cam.activations_and_grads.release()
        return go

    return {name: runner(cls) for name, cls in classes.items()}


def shap_runners(model, x, targets, bs: int, n_samples: int = 512) -> dict[str, Callable[[], object]]:
    """shap's KernelExplainer with the same superpixel players, mean baseline and sample count."""
    import shap

    players = [superpixel_players(model, x[i], 32) for i in range(x.shape[0])]
    base = torch.cat([make_baseline(x[i:i + 1], "mean") for i in range(x.shape[0])])

    def go():
        for i in range(x.shape[0]):
            seg = players[i]
            n = int(seg.max()) + 1

            def f(z: np.ndarray) -> np.ndarray:
                out = []
                with torch.no_grad():
                    for j in range(0, z.shape[0], bs):
                        keep = torch.from_numpy(z[j:j + bs]).float()[:, seg][:, None]     # (b, 1, H, W)
                        xb = x[i:i + 1] * keep + base[i:i + 1] * (1 - keep)
                        out.append(model.logits(xb).softmax(-1)[:, int(targets[i])])
                return torch.cat(out).numpy()

            shap.KernelExplainer(f, np.zeros((1, n))).shap_values(np.ones((1, n)), nsamples=n_samples, silent=True)
    return {"kernelshap": go}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default=",".join(METHODS.names()))
    ap.add_argument("--repeats", type=int, default=2, help="best of; calls over 5 s run once")
    ap.add_argument("--batch-size", type=int, default=8,
                    help="inputs per forward pass for vlx and captum alike (on 2 CPU cores, 4-8 is "
                         "fastest for EfficientNet; on a GPU use 64)")
    ap.add_argument("--images", type=int, default=2, choices=(1, 2), help="chelsea (1) or chelsea+coffee (2)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from skimage import data

    model = load_classifier("effnet-lite0", "cpu")
    x = model.to_input([data.chelsea(), data.coffee()][:args.images])
    with torch.no_grad():
        targets = tuple(int(i) for i in model.logits(x).argmax(1))
    target = ClassTarget(targets)
    layer, layer_module = model.layer("auto")
    print(f"model effnet-lite0, input {tuple(x.shape)}, targets {[model.short_label(i) for i in targets]}, "
          f"layer {layer}, torch threads {torch.get_num_threads()}")

    def fwd_bwd() -> None:
        xi = x.detach().requires_grad_(True)
        target.score(model.logits(xi)).sum().backward()

    fwd_bwd()
    t_fb, _ = timed(fwd_bwd, 5)
    with torch.no_grad():
        xb = x.repeat(64 // x.shape[0], 1, 1, 1)
        bs = args.batch_size
        model.logits(xb[:bs])
        t_fwd, _ = timed(lambda: [model.logits(xb[i:i + bs]) for i in range(0, xb.shape[0], bs)], 2)
    fwd_rate = xb.shape[0] / t_fwd
    print(f"plain forward+backward (B={x.shape[0]}): {t_fb * 1000:.0f} ms; plain batched forward (batches of {bs}): "
          f"{fwd_rate:.0f} images/s")

    peers = {"captum": captum_runners(model, x, targets, layer_module, args.batch_size)}
    for peer, make in (("grad-cam", lambda: gradcam_runners(model, x, targets, layer_module, args.batch_size)),
                       ("shap", lambda: shap_runners(model, x, targets, args.batch_size))):
        try:
            peers[peer] = make()
        except Exception as e:  # a missing peer is reported, then the run goes on without it
            print(f"note: {peer} skipped ({type(e).__name__}: {str(e).splitlines()[0][:120]}); "
                  "pytorch-grad-cam needs torchvision: use `make bench-env` and .bench-venv/bin/python")
    head = ("method", "vlx s", "x fwd+bwd", "vlx MB", "samples/s (vs plain fwd)")
    print("{:<21}{:>8}{:>11}{:>8}  {:<26}".format(*head) + "".join(f"  {p + ' s (peer/vlx, MB)':<28}" for p in peers),
          flush=True)
    for name in args.methods.split(","):
        import inspect

        accepts = any("batch_size" in inspect.signature(c.__init__).parameters
                      for c in METHODS.get(name).__mro__ if "__init__" in c.__dict__)
        m = get_method(name, **({"batch_size": args.batch_size} if accepts else {}))
        lay = layer if m.needs_layer else None
        t, mo = timed(lambda: m.attribute(model, x, target, lay), args.repeats)
        n = _samples(name, m, model, x)
        rate = f"{x.shape[0] * n / t:.0f}/s ({x.shape[0] * n / t / fwd_rate:.2f}x fwd)" if n else ""
        cols = []
        for runners in peers.values():
            if name in runners:
                tc, mc = timed(runners[name], args.repeats)
                cols.append(f"{tc:.2f} ({tc / t:.2f}x, {mc:.0f})")
            else:
                cols.append("-")
        print(f"{name:<21}{t:>8.2f}{t / t_fb:>11.1f}{mo:>8.0f}  {rate:<26}" + "".join(f"  {c:<28}" for c in cols),
              flush=True)


def _samples(name: str, m, model, x) -> int | None:
    """Masked forward passes per image, for the samples/s column."""
    if name == "rise":
        return m.n_masks
    if name in ("lime", "kernelshap"):
        return m.n_samples
    if name == "occlusion":
        return len(m.prepare(model, x[:1])["pos"])
    if name in ("scorecam", "ablationcam"):
        from vlx.attribute.hooks import capture

        with torch.no_grad(), capture(model.layer("auto")[1]) as cap:
            model.logits(x[:1])
        return int(cap.output.shape[1])
    return None


def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
