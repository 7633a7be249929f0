"""Sample efficiency of KernelSHAP, LIME and RISE: error against a high-sample reference as a
function of the number of model calls, vlx against captum (and shap's KernelExplainer), and
vlx's Sobol' RISE masks against i.i.d. masks (issue 15, items 1 and 5).

Model: EfficientNet-Lite0 (vlx's embedded default), the target its top class, the score the raw
logit. Inputs are prepared once per photo, outside any tool: the image at ``--size`` pixels, the
mean baseline, 50 SLIC superpixels as players (vlx's ``superpixel_players``). Every tool scores
the same coalitions the same way: a shared ``Game`` turns a coalition (or the masked image a
peer builds, read back to its coalition) into ``x * m + baseline * (1 - m)`` and caches each
coalition's score (KernelSHAP's extreme sizes recur across tools, seeds and the reference), so a
cache hit costs nothing and no tool is favoured. LIME is compared under one definition: cosine
distance between the coalition and the full image, kernel ``exp(-d^2 / 0.25^2)``, ridge
``alpha=1`` with an intercept, for vlx and for captum (a custom similarity and ``SkLearnRidge``);
KernelSHAP under the Shapley kernel for all. shap runs with ``l1_reg=False`` (no feature
selection) on the same game.

References per photo and seed (``--report``): KernelSHAP and LIME from a pooled regression over
a dedicated pool of ``--ref`` coalitions (a paired design whose sizes follow half the Shapley
kernel and half LIME's layer mass, seed 10 000) plus every coalition that any tool drew for the
same method under the *other* seeds (leave one seed out, so a reference never shares samples
with the estimate it scores); weights post-stratified on the pool's own size counts make it a
consistent estimate of each method's solution, since every design here is uniform within a
size. RISE likewise from ``--rise-ref`` Sobol' masks plus the other seeds' masks. The
reference's own standard error is printed. Errors: relative L2 ``|e - r| / |r|``, the same
with the reference's own variance subtracted (``rel_l2_debiased``: a small reference adds the
same noise to every tool and pulls ratios towards 1), and ``1 - Spearman`` over players (over
pixels for RISE), averaged over photos × seeds. Tools run
in alternating order across seeds. No time is measured: this is about model calls.

State lives in ``--out`` (prepared inputs, score caches, references, ``results.json``), so a
run can be extended with more seeds or photos, and the shap pass runs from the benchmark
environment on the same inputs and caches:

    PYTHONPATH=. .venv/bin/python benchmarks/sample_efficiency.py --out out/sample_efficiency \\
        --photos astronaut,coffee,rocket,chelsea,hubble_deep_field --seeds 5 --size 224 --ref 20000
    PYTHONPATH=. .bench-venv/bin/python benchmarks/sample_efficiency.py --out out/sample_efficiency \\
        --tools shap ...same options...
    PYTHONPATH=. .venv/bin/python benchmarks/sample_efficiency.py --out out/sample_efficiency --report

``--report`` prints the tables (peer error at 500, vlx samples to match, ratio; RISE) and writes
``error_vs_samples.png`` (matplotlib, in the dev extra).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

PHOTOS = ("astronaut", "coffee", "rocket", "chelsea", "hubble_deep_field")
KERNEL_WIDTH, RIDGE, N_PLAYERS, GRID = 0.25, 1.0, 50, 7
PEER_N = (250, 500)
VLX_N = (128, 256)
RISE_IID_N, RISE_SOBOL_N = 512, 256
METRICS = ("rel_l2", "rel_l2_debiased", "one_minus_spearman")     # errors() keys, as reported and plotted


# ----------------------------------------------------------------------------- inputs and game

def prepare(model, name: str, size: int) -> dict:
    """The photo at ``size`` px as model input ``(1, 3, s, s)``, its mean baseline, SLIC players
    ``(s, s)`` and the top class at that size."""
    from skimage import data

    from vlx.attribute.perturb import make_baseline, superpixel_players
    from vlx.image import from_array

    x = model.to_input(from_array(getattr(data, name)(), id=name))
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    base = make_baseline(x, "mean")
    players = superpixel_players(model, x[0], N_PLAYERS)
    with torch.no_grad():
        target = int(model.logits(x)[0].argmax())
    return {"x": x, "base": base, "players": players, "target": target}


class Game:
    """Scores of coalitions ``(n, P)`` of one prepared photo: ``logit_target(x * m + base * (1 - m))``
    with ``m`` the coalition painted on its players; every score is cached by coalition."""

    def __init__(self, model, inp: dict, cache_path: Path, batch: int) -> None:
        self.model, self.x, self.base, self.players = model, inp["x"], inp["base"], inp["players"]
        self.target, self.batch, self.path = inp["target"], batch, cache_path
        self.p = int(self.players.max()) + 1
        diff = (self.x - self.base).abs().sum(1)[0]                       # (h, w)
        flat = self.players.reshape(-1)
        # One representative pixel per player: where the image differs most from the baseline.
        self.rep = torch.stack([torch.nonzero(flat == j)[diff.reshape(-1)[flat == j].argmax()][0]
                                for j in range(self.p)])
        self.cache: dict[bytes, float] = {}
        if cache_path.exists():
            d = np.load(cache_path)
            self.cache = {k.tobytes(): float(v) for k, v in zip(d["z"], d["s"])}
        self.calls = 0
        self.tag: tuple | None = None                  # (method, tool, n, seed) being run
        self.rows: dict[tuple, list[torch.Tensor]] = {}

    def save(self) -> None:
        if self.cache:
            z = np.stack([np.frombuffer(k, dtype=np.uint8) for k in self.cache])
            np.savez(self.path, z=z, s=np.array(list(self.cache.values())))

    @torch.no_grad()
    def raw(self, masks: torch.Tensor) -> torch.Tensor:
        """Scores ``(n,)`` float64 of soft masks ``(n, 1, h, w)`` (no cache), in batches."""
        out = []
        for i in range(0, len(masks), self.batch):
            m = masks[i:i + self.batch].float()
            out.append(self.model.logits(self.x * m + self.base * (1 - m))[:, self.target].double())
            self.calls += len(m)
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        z = torch.as_tensor(z).to(torch.uint8).reshape(-1, self.p)
        if self.tag is not None:
            self.rows.setdefault(self.tag, []).append(z.clone())
        keys = [row.numpy().tobytes() for row in z]
        todo = sorted({k for k in keys if k not in self.cache})
        if todo:
            zt = torch.from_numpy(np.stack([np.frombuffer(k, dtype=np.uint8) for k in todo]))
            s = self.raw(zt.float()[:, self.players][:, None])
            self.cache.update(zip(todo, s.tolist()))
        return torch.tensor([self.cache[k] for k in keys], dtype=torch.float64)

    def coalitions_of(self, images: torch.Tensor) -> torch.Tensor:
        """The coalition ``(n, P)`` of masked images ``(n, 3, h, w)`` a peer built: a player is
        kept when its representative pixel is closer to the image than to the baseline."""
        flat = lambda t: t.reshape(t.shape[0], 3, -1)[:, :, self.rep]          # noqa: E731
        d_x = (flat(images) - flat(self.x)).abs().sum(1)
        d_b = (flat(images) - flat(self.base)).abs().sum(1)
        return (d_x < d_b).to(torch.uint8)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """A peer's forward: masked images ``(n, 3, h, w)`` → scores ``(n, 1)`` (target 0)."""
        return self(self.coalitions_of(images)).float()[:, None]

    def values(self, attr: torch.Tensor) -> torch.Tensor:
        """Per-player values ``(P,)`` from a peer's per-pixel attribution ``(1, 3, h, w)``."""
        return attr[0, 0].reshape(-1)[self.rep].double()


# ----------------------------------------------------------------------------- estimators

def reference_pool(n: int, p: int) -> torch.Tensor:
    """The dedicated reference coalitions ``(n, p)``: a paired design whose sizes follow half the
    Shapley kernel and half LIME's layer mass (seed 10 000: no estimate uses it)."""
    from vlx.attribute import sampling as S

    ks_mass, (lime_mass, _) = S.shapley_mass(p), S.lime_mass(p, KERNEL_WIDTH)
    return S.coalition_design(ks_mass, n, torch.Generator().manual_seed(10_000), alloc=0.5 * ks_mass + 0.5 * lime_mass)


def surrogate_reference(method: str, game: Game, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """KernelSHAP or LIME values and standard errors ``(P,)`` from the pooled coalitions ``rows``
    ``(N, P)`` (every design here is uniform within a size, so weights post-stratified on the
    pool's own size counts make the pooled regression consistent for the method's solution)."""
    from vlx.attribute import sampling as S

    z = rows.long()
    y = game(z)
    full, empty = float(game(torch.ones((1, game.p)))[0]), float(game(torch.zeros((1, game.p)))[0])
    if method == "kernelshap":
        return S.shapley_solve(z, y, S.design_weights(z, S.shapley_mass(game.p)), full, empty)
    mass, scale = S.lime_mass(game.p, KERNEL_WIDTH)
    return S.ridge_solve(z, y, S.design_weights(z, mass) * scale, RIDGE)


def vlx_surrogate(method: str, game: Game, n: int, seed: int) -> torch.Tensor:
    """vlx's KernelSHAP / LIME (default paired sampler) on ``n`` coalitions: values ``(P,)``."""
    from vlx.attribute import sampling as S
    from vlx.attribute.base import get_method

    opts = {"kernel_width": KERNEL_WIDTH, "ridge": RIDGE} if method == "lime" else {}
    m = get_method(method, n_samples=n, seed=seed, **opts)
    z, w = m.coalitions(game.p, torch.Generator().manual_seed(seed))
    y = game(z)
    full, empty = game(torch.ones((1, game.p))), game(torch.zeros((1, game.p)))
    return m.fit(z.double(), y, w, full[0], empty[0], S.pair_clusters(len(z), m.sampler != "iid"))[0]


def captum_surrogate(method: str, game: Game, n: int, seed: int) -> torch.Tensor:
    """captum's KernelShap / Lime (same players, baseline, kernel and ridge) on ``n`` samples."""
    from captum._utils.models.linear_model import SkLearnRidge
    from captum.attr import KernelShap, Lime

    from vlx.attribute.sampling import lime_kernel

    def similarity(_orig, _pert, interp, **_kw):
        return float(lime_kernel(interp.sum(), game.p, KERNEL_WIDTH))

    fmask = game.players[None, None].expand_as(game.x)
    torch.manual_seed(seed)
    if method == "kernelshap":
        tool = KernelShap(game.forward)
    else:
        tool = Lime(game.forward, interpretable_model=SkLearnRidge(alpha=RIDGE), similarity_func=similarity)
    attr = tool.attribute(game.x, baselines=game.base, target=0, feature_mask=fmask, n_samples=n,
                          perturbations_per_eval=game.batch)
    return game.values(attr)


def shap_kernel(game: Game, n: int, seed: int) -> torch.Tensor:
    """shap's KernelExplainer over the players (background: all removed) on ``n`` samples."""
    import shap

    np.random.seed(seed)
    f = lambda zs: game(torch.from_numpy(np.asarray(zs))).numpy()          # noqa: E731
    ex = shap.KernelExplainer(f, np.zeros((1, game.p)))
    vals = ex.shap_values(np.ones((1, game.p)), nsamples=n, l1_reg=False, silent=True)
    return torch.as_tensor(np.asarray(vals)).reshape(-1)[:game.p].double()


def rise_masks(game: Game, sampler: str, n: int, seed: int) -> torch.Tensor:
    """vlx's RISE masks ``(n, 1, h, w)`` (``sampler`` sobol or iid, 7×7 cells, p = 1/2)."""
    from vlx.attribute.perturb import RISE

    m = RISE(n_masks=n, grid=GRID, sampler=sampler, seed=seed)
    state = m.prepare(game.model, game.x)
    return torch.cat([m.mask_chunk(state, i, min(n, i + 256)) for i in range(0, n, 256)])


def rise_map(parts: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """vlx's RISE map ``(h, w)`` (``MaskMoments``, centred, p = 1/2) over ``(masks, scores)`` parts,
    and its per-pixel standard error ``(h, w)``."""
    from vlx.attribute.sampling import MaskMoments

    acc = MaskMoments()
    for masks, scores in parts:
        acc.update(masks, scores)
    return acc.map(0.5, centred=True)[0], acc.stderr(0.5, centred=True)[0]


# ----------------------------------------------------------------------------- driver

def run(args) -> None:
    """Score every tool's samples and store the estimates (``<photo>.est.pt``) and the coalitions
    each one drew (``<photo>.rows.pt``); errors are computed by ``--report``."""
    from vlx.models import load_classifier

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    (out / "config.json").write_text(json.dumps(vars(args), indent=1))
    model = load_classifier("effnet-lite0", "cpu")
    tools = args.tools.split(",")
    for photo in args.photos.split(","):
        t0 = time.time()
        inp_path = out / f"{photo}.inputs.pt"
        if inp_path.exists():
            inp = torch.load(inp_path)
        else:
            inp = prepare(model, photo, args.size)
            torch.save(inp, inp_path)
        game = Game(model, inp, out / f"{photo}.cache.npz", args.batch)
        est_path, rows_path = out / f"{photo}.est.pt", out / f"{photo}.rows.pt"
        est = torch.load(est_path) if est_path.exists() else {}
        rows = torch.load(rows_path) if rows_path.exists() else {}

        def save() -> None:
            torch.save(est, est_path)
            torch.save(rows, rows_path)
            game.save()

        if "ref" not in rows and "vlx" in tools:
            game(reference_pool(args.ref, game.p))
            rows["ref"] = reference_pool(args.ref, game.p).to(torch.uint8)
            est["rise-ref"] = game.raw(rise_masks(game, "sobol", args.rise_ref, 10_000))
            save()
            print(f"# {photo}: reference pool in {time.time() - t0:.0f} s", flush=True)
        for seed in range(args.seeds):
            jobs = []
            for method in ("kernelshap", "lime"):
                if method not in args.methods:
                    continue
                if "vlx" in tools:
                    jobs += [(method, "vlx", n) for n in VLX_N]
                if "captum" in tools:
                    jobs += [(method, "captum", n) for n in sorted(PEER_N, reverse=True)]
                if "shap" in tools and method == "kernelshap":
                    jobs += [(method, "shap", n) for n in sorted(PEER_N, reverse=True)]
            if seed % 2:                       # alternate the order of the tools across seeds
                jobs = jobs[::-1]
            for method, tool, n in jobs:
                tag = (method, tool, n, seed)
                if tag in est:
                    continue
                game.tag, game.rows = tag, {}
                fn = {"vlx": lambda: vlx_surrogate(method, game, n, seed),
                      "captum": lambda: captum_surrogate(method, game, n, seed),
                      "shap": lambda: shap_kernel(game, n, seed)}[tool]
                est[tag] = fn()
                rows[tag] = torch.cat(game.rows[tag]) if game.rows.get(tag) else torch.zeros((0, game.p))
                game.tag = None
                print(f"# {photo} {tag} done, {game.calls} model calls so far", flush=True)
            if "rise" in args.methods and "vlx" in tools:
                for sampler in (("iid", "sobol") if seed % 2 == 0 else ("sobol", "iid")):
                    tag = ("rise", f"vlx-{sampler}", seed)
                    if tag not in est:
                        n = RISE_IID_N if sampler == "iid" else RISE_SOBOL_N
                        est[tag] = game.raw(rise_masks(game, sampler, n, seed))
            save()
        print(f"# {photo}: {time.time() - t0:.0f} s, {game.calls} model calls", flush=True)


def errors(est: torch.Tensor, ref: torch.Tensor, ref_se: torch.Tensor) -> dict:
    """Relative L2 and 1 - Spearman of ``est`` against ``ref``, and the relative L2 with the
    reference's own noise taken out: the estimate and the reference are drawn independently, so
    ``E|e - r|^2 = E|e - theta|^2 + sum(se_r^2)`` and ``rel_l2_debiased = sqrt(max(|e - r|^2 -
    sum(se_r^2), 0)) / |r|`` estimates the error against the exact value ``theta``."""
    from scipy.stats import spearmanr

    e, r = est.double().reshape(-1), ref.double().reshape(-1)
    rho = spearmanr(e.numpy(), r.numpy()).statistic
    sq = float((e - r).pow(2).sum()) - float(ref_se.double().pow(2).sum())
    return {"rel_l2": float((e - r).norm() / r.norm()), "one_minus_spearman": float(1 - rho),
            "rel_l2_debiased": math.sqrt(max(sq, 0.0)) / float(r.norm())}


def score_photo(model, out: Path, photo: str, batch: int) -> tuple[list[dict], dict]:
    """Errors of every stored estimate of ``photo`` against a reference that leaves its seed out:
    the dedicated pool plus every other seed's samples of the same method (all tools)."""
    inp = torch.load(out / f"{photo}.inputs.pt")
    game = Game(model, inp, out / f"{photo}.cache.npz", batch)
    est, rows = torch.load(out / f"{photo}.est.pt"), torch.load(out / f"{photo}.rows.pt")
    seeds = sorted({k[-1] for k in est if isinstance(k, tuple)})
    runs, refinfo = [], {}
    for method in ("kernelshap", "lime"):
        for seed in seeds:
            pool = [rows["ref"]]
            for k, z in rows.items():
                if isinstance(k, tuple) and k[0] == method and k[3] != seed:
                    # captum's and shap's smaller runs are prefixes of their larger ones
                    if k[1] == "vlx" or k[2] == max(PEER_N):
                        pool.append(z)
            pooled = torch.cat(pool).long()
            ref, se = surrogate_reference(method, game, pooled)
            refinfo[(method, seed)] = {"rows": len(pooled), "se_rel": float(se.norm() / ref.norm())}
            for k, v in est.items():
                if isinstance(k, tuple) and k[0] == method and k[3] == seed:
                    runs.append({"photo": photo, "method": method, "tool": k[1], "n": k[2], "seed": seed,
                                 **errors(v, ref, se)})
    rise = {k: v for k, v in est.items() if isinstance(k, tuple) and k[0] == "rise"}
    masks = {k: rise_masks(game, k[1][4:], len(v), k[2]) for k, v in rise.items()}
    ref_masks = rise_masks(game, "sobol", len(est["rise-ref"]), 10_000)
    for seed in seeds:
        parts = [(ref_masks, est["rise-ref"])] + [(masks[k], v) for k, v in rise.items() if k[2] != seed]
        ref, ref_se = rise_map(parts)
        half, _ = rise_map([(ref_masks, est["rise-ref"])])
        refinfo[("rise", seed)] = {"rows": sum(len(p[1]) for p in parts),
                                   "dedicated_vs_pooled_rel_l2": float((half - ref).norm() / ref.norm())}
        for k, v in rise.items():
            if k[2] != seed:
                continue
            for j in range(4):
                n = len(v) >> j
                runs.append({"photo": photo, "method": "rise", "tool": k[1], "n": n, "seed": seed,
                             **errors(rise_map([(masks[k][:n], v[:n])])[0], ref, ref_se)})
    return runs, refinfo


def _curve(runs, method, tool, metric):
    ns = sorted({r["n"] for r in runs if r["method"] == method and r["tool"] == tool})
    return ns, [float(np.mean([r[metric] for r in runs if r["method"] == method and r["tool"] == tool
                               and r["n"] == n])) for n in ns]


def samples_to_match(ns, errs, target: float) -> float:
    """Samples at which the log-log interpolated error curve reaches ``target`` (extrapolated
    with slope -1/2 beyond the measured range)."""
    ln, le = np.log(ns), np.log(errs)
    t = math.log(target)
    if t >= le[0]:
        return float(math.exp(ln[0] - 2 * (t - le[0])))
    for i in range(len(ns) - 1):
        if le[i] >= t >= le[i + 1]:
            return float(math.exp(ln[i] + (t - le[i]) * (ln[i + 1] - ln[i]) / (le[i + 1] - le[i])))
    return float(math.exp(ln[-1] - 2 * (t - le[-1])))


def report(args) -> None:
    from vlx.models import load_classifier

    out = Path(args.out)
    model = load_classifier("effnet-lite0", "cpu")
    photos = [p for p in args.photos.split(",") if (out / f"{p}.est.pt").exists()]
    runs = []
    for photo in photos:
        r, info = score_photo(model, out, photo, args.batch)
        runs += r
        for k, v in info.items():
            print(f"  reference {photo} {k}: {v}")
    (out / "results.json").write_text(json.dumps(runs, indent=1))
    seeds = sorted({r["seed"] for r in runs})
    print(f"photos: {', '.join(photos)}; seeds: {len(seeds)}; config: {(out / 'config.json').read_text()}")
    for metric in METRICS:
        print(f"\n[{metric}] method  peer  peer@500  vlx@256  vlx samples to match  ratio")
        for method in ("kernelshap", "lime"):
            vn, ve = _curve(runs, method, "vlx", metric)
            for peer in ("captum", "shap"):
                pn, pe = _curve(runs, method, peer, metric)
                if 500 not in pn or not vn:
                    continue
                target = pe[pn.index(500)]
                need = samples_to_match(vn, ve, target)
                at256 = ve[vn.index(256)] if 256 in vn else float("nan")
                print(f"  {method:10s} {peer:6s} {target:.4f}  {at256:.4f}  {need:7.0f}  {500 / need:.2f}x")
        iid_n, iid_e = _curve(runs, "rise", "vlx-iid", metric)
        sob_n, sob_e = _curve(runs, "rise", "vlx-sobol", metric)
        for n in iid_n:
            if n // 2 in sob_n:
                need = samples_to_match(sob_n, sob_e, iid_e[iid_n.index(n)])
                print(f"  rise iid@{n} {iid_e[iid_n.index(n)]:.4f}  sobol@{n // 2} {sob_e[sob_n.index(n // 2)]:.4f}"
                      f"  sobol masks to match {need:.0f}  ratio {n / need:.2f}x")
    plot(runs, out / "error_vs_samples.png")


def plot(runs, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(METRICS), 3, figsize=(13, 11))
    for col, method in enumerate(("kernelshap", "lime", "rise")):
        for row, metric in enumerate(METRICS):
            ax = axes[row, col]
            for tool in sorted({r["tool"] for r in runs if r["method"] == method}):
                ns, es = _curve(runs, method, tool, metric)
                ax.plot(ns, es, "o-", label=tool)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("model calls (samples)")
            ax.set_ylabel(metric.replace("_", " "))
            ax.set_title(method)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    n_ph, n_sd = len({r["photo"] for r in runs}), len({r["seed"] for r in runs})
    fig.suptitle(f"EfficientNet-Lite0: error vs samples against a high-sample reference ({n_ph} photos × {n_sd} seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="out/sample_efficiency")
    ap.add_argument("--photos", default=",".join(PHOTOS))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--size", type=int, default=224, help="input side in pixels (the model's is 224)")
    ap.add_argument("--ref", type=int, default=20_000, help="coalitions in the KernelSHAP/LIME reference pool")
    ap.add_argument("--rise-ref", type=int, default=16_384, help="Sobol' masks in the RISE reference")
    ap.add_argument("--methods", default="kernelshap,lime,rise")
    ap.add_argument("--tools", default="vlx,captum", help="vlx, captum, shap (shap: from the bench env)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    ap.add_argument("--report", action="store_true", help="print the tables and write the plot")
    args = ap.parse_args(argv)
    if args.report:
        report(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
