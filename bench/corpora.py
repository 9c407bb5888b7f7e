"""The pinned public code the accuracy and speed benchmarks run on.

`python bench/corpora.py` downloads each corpus once (PyPI sdists with
`pip download --no-binary :all: --no-deps`, npm tarballs with `npm pack`) into
bench/corpora/_downloads/, unpacks it into bench/corpora/NAME/ (the archive's
top folder stripped), and writes bench/corpora/manifest.json with versions,
sha256 of the archives and LOC. Later runs are offline: an archive already
there is not fetched again, an unpacked corpus is not unpacked again.

LOC everywhere in bench/ means non-empty lines of the source files inside a
corpus's measured directories (Python: *.py; JS/TS: .js .mjs .cjs .jsx .ts
.tsx .mts .cts, .d.ts included).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
CORPORA = BENCH / "corpora"
DOWNLOADS = CORPORA / "_downloads"
MANIFEST = CORPORA / "manifest.json"

PY_SUFFIXES = (".py",)
JS_SUFFIXES = (".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".mts", ".cts")
SKIP_DIRS = {"node_modules", "__pycache__", ".git"}


@dataclass(frozen=True)
class Corpus:
    name: str
    registry: str  # "pypi" | "npm"
    package: str
    version: str
    shape: str  # why this corpus is in the set
    # Python: the folder put on sys.path for grimp and the top-level packages it graphs.
    sys_path: str = ""
    packages: tuple[str, ...] = ()
    # JS/TS: the folders dependency-cruiser is pointed at, and the tsconfig it is given.
    source_dirs: tuple[str, ...] = ()
    tsconfig: str | None = None
    speed: bool = False  # also a speed corpus (>= 150K LOC)

    @property
    def language(self) -> str:
        return "python" if self.registry == "pypi" else "js"

    @property
    def root(self) -> Path:
        return CORPORA / self.name

    @property
    def measured_dirs(self) -> list[Path]:
        """The folders whose files make the compared universe and the LOC count."""
        if self.language == "python":
            base = self.root / self.sys_path
            return [base.joinpath(*p.split(".")) for p in self.packages]
        return [self.root / d for d in self.source_dirs]

    @property
    def suffixes(self) -> tuple[str, ...]:
        return PY_SUFFIXES if self.language == "python" else JS_SUFFIXES


CORPUS_LIST: tuple[Corpus, ...] = (
    Corpus("django", "pypi", "django", "5.2.8",
           "large, absolute imports, flat layout", packages=("django",), speed=True),
    Corpus("sqlalchemy", "pypi", "sqlalchemy", "2.1.9",
           "200K+ LOC, lib/ layout, relative-import heavy (`from .. import util`)",
           sys_path="lib", packages=("sqlalchemy",), speed=True),
    Corpus("sympy", "pypi", "sympy", "1.14.0",
           "600K LOC, deep package tree, many deferred imports", packages=("sympy",), speed=True),
    Corpus("black", "pypi", "black", "26.10.1",
           "src/ layout, three top-level packages importing each other",
           sys_path="src", packages=("black", "blackd", "blib2to3")),
    Corpus("zope.interface", "pypi", "zope.interface", "8.7",
           "src/ layout, PEP 420 namespace package (no zope/__init__.py)",
           sys_path="src", packages=("zope.interface",)),
    Corpus("pip", "pypi", "pip", "26.3",
           "src/ layout, vendored libraries with relative imports",
           sys_path="src", packages=("pip",)),
    Corpus("rxjs", "npm", "rxjs", "7.8.2",
           "TypeScript sources, index files, tsconfig baseUrl/paths",
           source_dirs=("src",), tsconfig="tsconfig.json"),
    Corpus("zod", "npm", "zod", "4.6.7",
           "TypeScript, `.js` specifiers naming .ts sources, self-imports through package exports",
           source_dirs=("src",)),
    Corpus("effect", "npm", "effect", "4.1.0",
           "500K LOC TypeScript, `.ts` specifiers", source_dirs=("src",), speed=True),
    Corpus("webpack", "npm", "webpack", "5.112.2",
           "plain JS, CommonJS require()", source_dirs=("lib", "bin", "hot"), speed=True),
    Corpus("three", "npm", "three", "0.187.0",
           "plain JS, ES modules, addons importing the library by package name",
           source_dirs=("src", "examples/jsm"), speed=True),
)
BY_NAME = {c.name: c for c in CORPUS_LIST}


def source_files(corpus: Corpus) -> list[Path]:
    files: list[Path] = []
    for top in corpus.measured_dirs:
        for path in top.rglob("*"):
            if path.suffix in corpus.suffixes and path.is_file() and not path.is_symlink() \
                    and SKIP_DIRS.isdisjoint(path.relative_to(corpus.root).parts):
                files.append(path)
    return sorted(files)


def count_loc(files: list[Path]) -> int:
    total = 0
    for path in files:
        with path.open("rb") as handle:
            total += sum(1 for line in handle if line.strip())
    return total


def archive_for(corpus: Corpus) -> Path | None:
    stem = corpus.package.replace(".", "_").replace("-", "_").lower()
    for candidate in DOWNLOADS.glob("*"):
        name = candidate.name.lower().replace(".", "_").replace("-", "_")
        if name.startswith(f"{stem}_{corpus.version.replace('.', '_')}_"):  # then tar_gz / tgz
            return candidate
    return None


def download(corpus: Corpus) -> Path:
    DOWNLOADS.mkdir(parents=True, exist_ok=True)
    if (found := archive_for(corpus)) is not None:
        return found
    if corpus.registry == "pypi":
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:",
                   "--no-deps", "--dest", str(DOWNLOADS), f"{corpus.package}=={corpus.version}"]
    else:
        command = ["npm", "pack", "--silent", "--pack-destination", str(DOWNLOADS),
                   f"{corpus.package}@{corpus.version}"]
    subprocess.run(command, check=True)
    found = archive_for(corpus)
    if found is None:
        raise SystemExit(f"{corpus.name}: downloaded, but no archive matched in {DOWNLOADS}")
    return found


def unpack(corpus: Corpus, archive: Path) -> None:
    if corpus.root.is_dir():
        return
    staging = corpus.root.with_name(corpus.root.name + ".partial")
    with tarfile.open(archive) as tar:
        tar.extractall(staging, filter="data")
    (top,) = staging.iterdir()  # sdists and npm tarballs have exactly one top folder
    top.rename(corpus.root)
    staging.rmdir()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prepare(names: list[str]) -> dict:
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    for corpus in (BY_NAME[n] for n in names):
        archive = download(corpus)
        unpack(corpus, archive)
        files = source_files(corpus)
        manifest[corpus.name] = {
            **asdict(corpus), "archive": archive.name, "sha256": sha256(archive),
            "files": len(files), "loc": count_loc(files),
        }
        print(f"{corpus.name:15} {corpus.version:9} {len(files):6} files "
              f"{manifest[corpus.name]['loc']:8} LOC  {corpus.shape}")
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="corpora to prepare (default: all)")
    args = parser.parse_args()
    unknown = set(args.names) - BY_NAME.keys()
    if unknown:
        parser.error(f"unknown corpora: {sorted(unknown)}; known: {sorted(BY_NAME)}")
    prepare(args.names or list(BY_NAME))


if __name__ == "__main__":
    main()
