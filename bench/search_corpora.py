"""The projects of the docstring→code search benchmark, pinned, and their indexed copies.

Ten public projects whose functions carry docstrings or JSDoc, five Python and
five JS/TS, 3K-20K LOC each, of different domains and shapes (free functions
against class methods, one big module against hundreds of small files). They
are fetched once like the other corpora (bench/corpora.py: `pip download
--no-binary :all: --no-deps`, `npm pack`, into bench/corpora/_downloads/,
unpacked into bench/corpora/NAME/), and only the package's own source folders
are used (no tests, docs or bundles).

The split, fixed before any figure was seen:

  dev    click (CLI), more-itertools (iteration algorithms), luxon (dates),
         rxjs (reactive streams)
  check  requests (HTTP client), jinja2 (template compiler), boltons (grab-bag
         utilities), ws (WebSocket protocol), @tanstack/query-core (data cache),
         lodash-es (collection utilities)

The ranking may be tuned on "dev" only; "check" is reported and never tuned
on, so its figures estimate what an unseen hold-out of the same kind gives.
Dev holds one method-heavy and one function-heavy project of each language
(click: a class hierarchy of commands and parameters; more-itertools: ~180
free functions in one 5K-line module; luxon: JS classes with getters and
JSDoc on nearly every member; rxjs: TypeScript, one operator per file). Check
repeats those shapes on other domains (requests, jinja2 and query-core are
method-heavy, boltons mixed) and adds two the dev set lacks: hundreds of
one-function files (lodash-es) and a small plain-JS protocol library (ws).

`work_copy` copies a project's source folders (and its package.json /
tsconfig.json / pyproject.toml, which the resolvers read) into
bench/corpora/_search/NAME/ with every docstring and JSDoc block blanked
(bench/docstrings.py), checks every file (same line count, same symbols on the
same lines, still parses, no docstring left) and commits it to a fresh git
repository, since the worker clones what it ingests.

    .venv/bin/python bench/search_corpora.py    # fetch and unpack all, print sizes
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from corpora import (  # noqa: E402
    BY_NAME, CORPORA, DOWNLOADS, Corpus, archive_for, count_loc, download, sha256,
    source_files, unpack)
from docstrings import blank_source, check_blanked  # noqa: E402

from edge.source import language_of  # noqa: E402

WORK = CORPORA / "_search"
MANIFEST = CORPORA / "search_manifest.json"
CONFIG_FILES = ("package.json", "tsconfig.json", "pyproject.toml")


@dataclass(frozen=True)
class SearchProject:
    corpus: Corpus
    split: str  # "dev" (tuning allowed) | "check" (reported only)

    @property
    def name(self) -> str:
        return self.corpus.name

    @property
    def language(self) -> str:
        return self.corpus.language


def _py(name: str, version: str, domain: str, package: str, sys_path: str = "") -> Corpus:
    return Corpus(name, "pypi", name, version, domain, sys_path=sys_path, packages=(package,))


def _js(name: str, version: str, domain: str, *dirs: str, package: str = "") -> Corpus:
    return Corpus(name, "npm", package or name, version, domain, source_dirs=dirs)


PROJECTS: tuple[SearchProject, ...] = (
    SearchProject(_py("click", "8.5.1", "CLI framework, class-heavy", "click", "src"), "dev"),
    SearchProject(_py("more-itertools", "11.2.1", "iteration algorithms, free functions",
                      "more_itertools"), "dev"),
    SearchProject(_js("luxon", "3.7.2", "dates and times, JS classes with getters", "src"),
                  "dev"),
    SearchProject(BY_NAME["rxjs"], "dev"),  # the import-graph corpus: TS, reactive streams
    SearchProject(_py("requests", "2.34.2", "HTTP client", "requests", "src"), "check"),
    SearchProject(_py("jinja2", "3.1.6", "template engine and compiler", "jinja2", "src"),
                  "check"),
    SearchProject(_py("boltons", "26.2.0", "grab-bag utilities", "boltons"), "check"),
    SearchProject(_js("ws", "8.23.1", "WebSocket protocol, plain JS", "lib"), "check"),
    SearchProject(_js("tanstack-query-core", "5.108.4", "data-fetching cache, TS classes",
                      "src", package="@tanstack/query-core"), "check"),
    SearchProject(_js("lodash-es", "4.18.1", "collection utilities, one function per file",
                      "."), "check"),
)
BY_PROJECT = {p.name: p for p in PROJECTS}


def fetch(project: SearchProject) -> Path:
    """The unpacked project, downloaded the first time only."""
    corpus = project.corpus
    unpack(corpus, _archive(corpus))
    return corpus.root


def _archive(corpus: Corpus) -> Path:
    return _scoped_archive(corpus) if corpus.package.startswith("@") else download(corpus)


def _scoped_archive(corpus: Corpus) -> Path:
    # `npm pack @scope/name` writes scope-name-VERSION.tgz, which corpora.archive_for
    # finds under that spelling; the download itself is the same npm pack.
    spelled = replace(corpus, package=corpus.package[1:].replace("/", "-"))
    if (found := archive_for(spelled)) is None:
        DOWNLOADS.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "pack", "--silent", "--pack-destination", str(DOWNLOADS),
                        f"{corpus.package}@{corpus.version}"], check=True)
        found = archive_for(spelled)
    if found is None:
        raise SystemExit(f"{corpus.name}: npm pack ran, but no archive matched in {DOWNLOADS}")
    return found


def project_files(project: SearchProject) -> list[Path]:
    """The source files the benchmark indexes and asks about (corpora's measured folders)."""
    return [p for p in source_files(project.corpus) if language_of(p.name) is not None]


@dataclass
class WorkCopy:
    root: Path  # the committed, blanked repository
    files: int
    blanked: int  # docstrings and JSDoc blocks removed


class BlankingError(Exception):
    """A blanked file differs from its original in more than its docstrings."""


def work_copy(project: SearchProject, into: Path = WORK) -> WorkCopy:
    """A fresh blanked copy of the project, checked file by file and committed."""
    source, target = project.corpus.root, into / project.name
    if target.exists():
        shutil.rmtree(target)
    files = project_files(project)
    blanked, problems = 0, []
    for path in files:
        rel = path.relative_to(source)
        original = path.read_bytes()
        language = language_of(path.name)
        text, count = blank_source(original, language)
        problems += [f"{rel}: {p}" for p in check_blanked(rel.as_posix(), original, text,
                                                           language)]
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_bytes(text)
        blanked += count
    if problems:
        raise BlankingError(f"{project.name}: " + "; ".join(problems[:10]))
    for name in CONFIG_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)
    _commit(target)
    return WorkCopy(target, len(files), blanked)


def _commit(folder: Path) -> None:
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=bench", "-c", "user.email=bench@localhost",
                  "commit", "-q", "-m", "docstrings blanked"]):
        subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)


def describe(project: SearchProject) -> dict:
    """Name, version, archive checksum and size, for the results file."""
    corpus = project.corpus
    files = project_files(project)
    archive = _archive(corpus)
    return {"name": corpus.name, "registry": corpus.registry, "package": corpus.package,
            "version": corpus.version, "split": project.split, "language": project.language,
            "domain": corpus.shape, "folders": [str(d.relative_to(corpus.root))
                                                for d in corpus.measured_dirs],
            "archive": archive.name, "sha256": sha256(archive), "files": len(files),
            "loc": count_loc(files)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="projects (default: all)")
    args = parser.parse_args()
    unknown = set(args.names) - BY_PROJECT.keys()
    if unknown:
        parser.error(f"unknown projects: {sorted(unknown)}; known: {sorted(BY_PROJECT)}")
    manifest = {}
    for project in (BY_PROJECT[n] for n in args.names or BY_PROJECT):
        fetch(project)
        manifest[project.name] = info = describe(project)
        print(f"{project.name:20} {info['version']:9} {project.split:5} {info['files']:5} files "
              f"{info['loc']:6} LOC  {info['domain']}")
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
