"""The package's import graph: no circle, and no module imports from a layer above its own.

Every ``brats_ssl`` import is counted, those inside functions too (a lazy import is still a
dependency). A module belongs to the layer of its longest prefix in :data:`LAYERS`; a new module
with no layer fails here until it is placed.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "brats_ssl"

# Lowest first. A module may import from its own layer and the ones before it, never after.
# (experiment_folder and commands are named ahead of the branches that add them: issue 13, items 2 and 5.)
LAYERS: list[tuple[str, set[str]]] = [
    (
        "foundations: plain settings, files, errors, the method table (torch-free)",
        {
            "",
            "errors",
            "paths",
            "atomic",
            "resources",
            "progress",
            "stats",
            "summary_columns",
            "batch_mix",
            "config",
            "ssl.registry",
            "variants",
            "records",
        },
    ),
    ("the domain-free training engine: loop, checkpoints, device, processes, progress plot", {"engine"}),
    ("BraTS data and networks", {"data", "networks"}),
    (
        "per-volume maths and outputs: losses, metrics, inference, post-processing, pictures, locks",
        {"losses", "metrics", "inference", "postprocess", "viz", "folder_lock"},
    ),
    (
        "a training run: context, model, phases, method result, finalisation; reading a run folder",
        {"run", "finalize", "run_folder"},
    ),
    ("methods and pseudo-label tools", {"ssl"}),
    (
        "what the commands do: train, predict, experiment, report, review, demo",
        {
            "pipeline",
            "predict",
            "experiment",
            "experiment_jobs",
            "experiment_tables",
            "experiment_folder",
            "report",
            "review",
            "demo",
        },
    ),
    ("the command line", {"cli", "commands", "__main__"}),
]

# Circles known and being removed elsewhere; each must still exist (a stale exemption fails too).
KNOWN_CIRCLES: list[set[str]] = []


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    path = PACKAGE.joinpath(*name.split(".")) if name else PACKAGE
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(path: Path) -> set[str]:
    """The brats_ssl modules ``path`` imports, relative to the package ('' for the package itself):
    ``from brats_ssl.x import y`` names module ``x.y`` when y is a module, else module ``x``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{path}: relative import; the package imports absolutely (brats_ssl....)"
            targets = [
                f"{node.module}.{alias.name}"
                if is_module(_relative(f"{node.module}.{alias.name}"))
                else node.module or ""
                for alias in node.names
            ]
        else:
            continue
        found |= {_relative(t) for t in targets if t == "brats_ssl" or t.startswith("brats_ssl.")}
    return found - {module_name(path)}


def _relative(target: str) -> str:
    return target[len("brats_ssl.") :] if target.startswith("brats_ssl.") else ""


def graph() -> dict[str, set[str]]:
    return {module_name(path): imports_of(path) for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or (prefix and module.startswith(prefix + ".")):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), index)
    return None if best is None else best[1]


def circles(edges: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read():
    edges = graph()
    assert "ssl.registry" in edges["config"] and "engine.distributed" in edges["pipeline"]
    assert "ssl.teacher" in edges["ssl.ours"]


def test_every_module_has_a_layer():
    missing = sorted(m for m in graph() if layer_of(m) is None)
    assert not missing, f"modules with no layer (add them to LAYERS): {missing}"


def test_no_import_from_a_higher_layer():
    upward = []
    for module, deps in graph().items():
        own = layer_of(module)
        for dep in sorted(deps):
            layer = layer_of(dep)
            if own is not None and layer is not None and layer > own:
                upward.append(f"{module} (layer {own}) imports {dep} (layer {layer}: {LAYERS[layer][0]})")
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_no_import_circle():
    found = circles(graph())
    unknown = [sorted(c) for c in found if c not in KNOWN_CIRCLES]
    assert not unknown, f"import circles: {unknown}"
    stale = [sorted(c) for c in KNOWN_CIRCLES if c not in found]
    assert not stale, f"circles listed in KNOWN_CIRCLES that are gone (remove them from the list): {stale}"


def test_engine_knows_nothing_of_brats():
    """engine/ imports nothing above it, and no BraTS region or dataset word appears in its code."""
    for path in (PACKAGE / "engine").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        words = [w for w in ('"WT"', '"TC"', '"ET"', "BraTS", "brats_ssl.data", "brats_ssl.networks") if w in text]
        assert not words, f"{path.name}: {words}"


def test_no_source_file_over_450_lines():
    """One concept per file: a module that outgrows 450 lines is split, not grown (issue 13)."""
    long = {
        p.relative_to(PACKAGE).as_posix(): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 450
    }
    assert not long, f"split these modules: {long}"
