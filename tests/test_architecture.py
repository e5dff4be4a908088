"""The house rules, checked: layers that look left (import-linter), short functions, no private names across modules."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "cofee_lib"
MAX_FUNCTION_LINES = 80


def _modules():
    return sorted(PACKAGE.rglob("*.py"))


def test_import_layers_and_no_cycles():
    """`lint-imports` with the contracts of pyproject.toml: each layer imports only from those below it."""
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.fail("lint-imports is not installed: `pip install -e '.[dev]'` installs import-linter")
    proc = subprocess.run([str(exe), "--no-cache"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "broken" not in proc.stdout.split("Contracts:")[-1].split("kept")[0]


def test_the_layer_contract_names_every_module():
    """exhaustive = true in the contract: a new module must be placed in a layer (else lint-imports fails)."""
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert "exhaustive = true" in text and 'type = "acyclic_siblings"' in text


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "functions over 80 lines: " + ", ".join(long)


def test_no_private_name_is_imported_from_another_module():
    crossing = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__") \
                            and not (path.parent / f"{alias.name}.py").exists():  # a package's private submodule
                        crossing.append(f"{path.relative_to(REPO)}:{node.lineno} {alias.name}")
    assert not crossing, "private names used across modules: " + ", ".join(crossing)


def test_the_kit_never_imports_bench():
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            assert not any(n == "bench" or n.startswith("bench.") for n in names), f"{path} imports bench"
        assert "sys.path" not in path.read_text(encoding="utf-8"), f"{path} edits sys.path"
