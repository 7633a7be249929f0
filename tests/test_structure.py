"""The shape of the package, read from the source: shipped code never imports vlx.testing, the
module-level imports between vlx modules have no cycle, every registration lives in a provider
module the registry loads, and `import vlx.pipeline` loads no evaluation suite, leaderboard,
tables or CLI helpers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VLX = ROOT / "vlx"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def shipped_files() -> list[Path]:
    return sorted(p for p in VLX.rglob("*.py") if "testing" not in p.relative_to(VLX).parts[:1])


def imports(path: Path, module_level_only: bool) -> list[str]:
    """Absolute names of the vlx modules a file imports (``from a.b import c`` counts as ``a.b.c``
    when that is a module, else ``a.b``). ``if TYPE_CHECKING:`` blocks are skipped."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    nodes: list[ast.AST] = []

    def walk(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                nodes.append(node)
            elif isinstance(node, (ast.If, ast.Try, ast.With)):
                for field in ("body", "orelse", "finalbody", "handlers"):
                    for sub in getattr(node, field, []) or []:
                        walk(sub.body if isinstance(sub, ast.ExceptHandler) else [sub])
            elif not module_level_only:
                walk([n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))])

    walk(tree.body)
    out = []
    for node in nodes:
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")
            anchor = anchor[:len(anchor) - node.level + 1]
            base = ".".join(anchor + ([base] if base else []))
        for a in node.names:
            full = f"{base}.{a.name}"
            out.append(full if _is_module(full) else base)
    return [m for m in out if m == "vlx" or m.startswith("vlx.")]


def _is_module(name: str) -> bool:
    p = ROOT.joinpath(*name.split("."))
    return p.with_suffix(".py").exists() or (p / "__init__.py").exists()


def test_shipped_code_never_imports_vlx_testing():
    bad = [(module_name(p), m) for p in shipped_files() for m in imports(p, module_level_only=False)
           if m == "vlx.testing" or m.startswith("vlx.testing.")]
    assert not bad, f"shipped modules import test models: {bad}"


def test_the_import_walker_sees_imports(tmp_path):
    """The walker is not blind: it finds the imports of a known module, lazy ones included."""
    found = set(imports(VLX / "batch" / "launch.py", module_level_only=True))
    assert {"vlx.batch.items", "vlx.batch.shard", "vlx.errors"} <= found
    assert "vlx.pipeline" not in found and "vlx.pipeline" in imports(VLX / "batch" / "launch.py", False)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                c = visit(m)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("module_level_only", [True, False])
def test_no_import_cycles_between_vlx_modules(module_level_only):
    """No cycle among module-level imports, nor when the imports inside functions count too (a
    lazy import must not hide a misplaced name). A module importing its own parent package (for
    a re-exported name) is not an edge back."""
    graph: dict[str, set[str]] = {}
    for p in sorted(VLX.rglob("*.py")):
        me = module_name(p)
        graph[me] = {m for m in imports(p, module_level_only) if m != me and not me.startswith(m + ".")}
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


@pytest.mark.parametrize("pair", [("vlx.batch.shard", "vlx.batch.launch"),
                                  ("vlx.fewshot.explain", "vlx.fewshot.baselines"),
                                  ("vlx.mllm.adapter", "vlx.mllm.demo"), ("vlx.mllm.adapter", "vlx.mllm.hf")])
def test_the_three_old_cycles_are_gone_even_with_lazy_imports(pair):
    a, b = pair
    file = lambda m: ROOT.joinpath(*m.split(".")).with_suffix(".py")  # noqa: E731
    assert not (b in imports(file(a), False) and a in imports(file(b), False))


def test_every_registration_is_in_a_provider_module():
    from vlx.registry import FAMILIES, PROVIDERS

    by_name = {r.kind: r for r in FAMILIES}
    var = {"METHODS": "method", "MLLM_METHODS": "mllm method", "FEWSHOT_EXPLAINERS": "few-shot explainer",
           "METRICS": "metric", "SEGMENTERS": "segmenter", "DESCRIBERS": "describer", "VERBALIZERS": "verbalizer"}
    seen = set()
    for p in shipped_files():
        if p.name == "registry.py":
            continue
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "register" and isinstance(node.value, ast.Name) \
                    and node.value.id in var:
                kind = var[node.value.id]
                assert module_name(p) in PROVIDERS[kind], f"{module_name(p)} registers {kind}s but is not a provider"
                seen.add(kind)
    assert seen == set(by_name)


def test_no_side_effect_imports_for_registries():
    """The registry loads its providers; no module imports one just to fill a registry."""
    offenders = [f"{p.relative_to(ROOT)}: {line.strip()}" for p in shipped_files()
                 for line in p.read_text(encoding="utf-8").splitlines()
                 if "noqa: F401" in line and ("regist" in line or "fills" in line)]
    assert not offenders


def test_import_pipeline_loads_no_evaluation_suite_or_cli():
    code = ("import sys, vlx.pipeline; print('\\n'.join(m for m in sys.modules if m.startswith('vlx')))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                cwd=ROOT).stdout.split())
    assert "vlx.pipeline" in loaded
    heavy = {"vlx.evaluate.suite", "vlx.evaluate.leaderboard", "vlx.evaluate.tables", "vlx.evaluate.cli_eval",
             "vlx.evaluate.runner", "vlx.evaluate.deletion", "vlx.cli", "vlx.report", "vlx.batch"}
    assert not loaded & heavy, sorted(loaded & heavy)
