"""The install files agree with each other and the CLI is wired up."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower().replace("_", "-")


def _pyproject_requirements() -> set[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = list(data["project"]["dependencies"])
    for extra in data["project"].get("optional-dependencies", {}).values():
        reqs += extra
    return {_norm(r) for r in reqs}


def _environment_requirements() -> set[str]:
    reqs, in_pip = set(), False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        stripped = line.split("#", 1)[0].rstrip()
        if re.match(r"^\s*-\s*pip:\s*$", stripped):
            in_pip = True
            continue
        if in_pip:
            m = re.match(r"^\s{4,}-\s*(.+)$", stripped)
            if m:
                item = m.group(1).strip()
                if not item.startswith("-e"):
                    reqs.add(_norm(item))
            elif stripped.strip():
                in_pip = False
    return reqs


def test_environment_yml_names_the_same_packages_as_pyproject():
    py, env = _pyproject_requirements(), _environment_requirements()
    assert py == env, f"only in pyproject: {sorted(py - env)}; only in environment.yml: {sorted(env - py)}"


def test_torch_pin_excludes_cuda_pulling_releases():
    torch_req = next(r for r in _pyproject_requirements() if r.startswith("torch"))
    assert "<2.14" in torch_req and ">=" in torch_req


def test_ci_calls_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make reproduce" in readme
    assert "make test" in ci


def test_cli_lists_its_commands(cofee_cli):
    proc = cofee_cli("--help")
    assert proc.returncode == 0, proc.stderr
    for name in ("evaluate", "corpus"):
        assert name in proc.stdout
