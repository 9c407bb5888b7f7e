"""grimp's import graph of a corpus as file->file edges (run with bench/.venv/bin/python).

    bench/.venv/bin/python bench/grimp_edges.py ROOT SYS_PATH PACKAGE [PACKAGE...] [--json OUT]

Builds the graph the way the benchmark compares against: internal packages
only, no cache (`cache_dir=None`, so every run parses every file). Module names
become paths relative to ROOT: `a.b` is SYS_PATH/a/b/__init__.py when that
package exists, else SYS_PATH/a/b.py; modules with neither (namespace packages)
have no file and no edges to compare. With --json the edges and each edge's
import statements (grimp's line numbers and line text) are written to OUT;
without it only the graph is built, which is what bench/speed.py times.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import grimp


def module_file(root: Path, sys_path: Path, module: str) -> str | None:
    base = sys_path.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_name(base.name + ".py")):
        if candidate.is_file():
            return candidate.relative_to(root).as_posix()
    return None


def file_edges(graph, root: Path, sys_path: Path) -> dict:
    files = {m: module_file(root, sys_path, m) for m in graph.modules}
    edges = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            src, dst = files[importer], files[imported]
            if src is None or dst is None:
                continue
            details = graph.get_import_details(importer=importer, imported=imported)
            evidence = "; ".join(f"{d['line_number']}: {d['line_contents']}" for d in details)
            edges.append([src, dst, evidence])
    return {"files": sorted(f for f in files.values() if f is not None), "edges": edges}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("sys_path", help="folder under ROOT that goes on sys.path ('' for ROOT)")
    parser.add_argument("packages", nargs="+")
    parser.add_argument("--json", type=Path, dest="json_out")
    args = parser.parse_args()

    root = args.root.resolve()
    sys_path = (root / args.sys_path).resolve()
    sys.path.insert(0, str(sys_path))  # after importing grimp: the corpus must not shadow its imports
    started = time.perf_counter()
    graph = grimp.build_graph(*args.packages, include_external_packages=False, cache_dir=None)
    seconds = time.perf_counter() - started
    print(f"grimp: {len(graph.modules)} modules in {seconds:.3f} s", file=sys.stderr)
    if args.json_out:
        result = file_edges(graph, root, sys_path)
        result["build_seconds"] = seconds
        args.json_out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
