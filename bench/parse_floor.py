"""How much of a Python parse is tree-sitter's own C, the floor no Python change can lower.

    .venv/bin/python bench/parse_floor.py [CORPUS ...] [--repeats 3] [--json OUT]

For each Python speed corpus (bench/speed.py's copy in bench/corpora/_speed/NAME), its
measured files are read into memory once, then timed in this process with CPU time, best of
`--repeats`:
- parse: `Parser.parse` of every file, trees kept;
- free: dropping those trees (tree-sitter's own free, no Python objects);
- query: the parser's one query (edge/parse/python.py `_QUERY`) run over every tree;
- parse_python: the whole per-file parse the worker runs (the three above plus the
  Python that reads the captures).
The graph stage and interpreter start come on top (`python -m edge analyze --stats`).
LOC is bench/corpora.py's count (non-empty lines), as in bench/speed.py, so
"C floor LOC/s" is the most `analyze --workers 1` could reach on this machine if
every line of Python in it cost nothing.
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from corpora import BY_NAME, count_loc, source_files  # noqa: E402
from speed import speed_tree  # noqa: E402
from tree_sitter import Parser, QueryCursor  # noqa: E402

from edge.parse import python  # noqa: E402


def _best(repeats: int, step) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        step()
        best = min(best, time.process_time() - started)
    return best


def measure(name: str, repeats: int) -> dict:
    corpus = speed_tree(BY_NAME[name])
    files = sorted(source_files(corpus))
    sources = [(str(p), p.read_bytes()) for p in files]
    loc = count_loc(files)
    parser = Parser(python.LANGUAGE)
    trees: list = []

    def parse():
        trees.clear()
        trees.extend(parser.parse(source) for _, source in sources)

    def free():
        parse()  # not timed: _best times this whole step, so free is told apart below
        trees.clear()

    gc.disable()  # as edge.analyze runs it: the collector paused
    parse_s = _best(repeats, parse)
    free_s = _best(repeats, free) - parse_s
    parse()
    query_s = _best(repeats, lambda: [QueryCursor(python._QUERY).captures(t.root_node)
                                      for t in trees])
    trees.clear()
    whole_s = _best(repeats, lambda: [python.parse_python(p, s) for p, s in sources])
    gc.enable()
    floor = parse_s + free_s + query_s
    return {"corpus": name, "files": len(sources), "loc": loc,
            "parse_s": round(parse_s, 3), "free_s": round(max(free_s, 0.0), 3),
            "query_s": round(query_s, 3), "parse_python_s": round(whole_s, 3),
            "python_share_of_parse": round(1 - floor / whole_s, 3),
            "c_floor_loc_per_s": round(loc / floor)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpora", nargs="*", default=["sympy", "django"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    rows = [measure(name, args.repeats) for name in args.corpora]
    print("| corpus | LOC | parse s | free s | query s | C floor LOC/s | parse_python s "
          "| Python share |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['corpus']} | {r['loc']:,} | {r['parse_s']:.2f} | {r['free_s']:.2f} | "
              f"{r['query_s']:.2f} | {r['c_floor_loc_per_s']:,} | {r['parse_python_s']:.2f} | "
              f"{r['python_share_of_parse']:.0%} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
