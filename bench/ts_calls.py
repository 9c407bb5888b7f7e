"""Our TypeScript CALLS edges against the TypeScript type checker's own resolution.

    python3 bench/ts_calls.py [CORPUS ...] [--refresh] [--examples N] [--json PATH]
                              [--edge-from DIR [--edge-label TEXT]]

Corpora: rxjs and tanstack-query-core by default (TypeScript); zod (TypeScript, no
tsconfig shipped: the checker's defaults below), blueprintjs-core (React .tsx, JSX
elements as calls of the components they name) and webpack (plain CommonJS JavaScript,
read with allowJs) when named; so are lodash-es, luxon (plain-JS ES modules with default
exports) and ws (plain CommonJS), the search benchmark's corpora (bench/search_corpora.py,
the same Corpus objects; none ships a tsconfig).

Reference (bench/ts_calls.mjs, typescript 5.9.3 from bench/node_modules, installed by
bench/setup_tools.sh): a Program over the corpus's source folder, with its tsconfig's
compiler options when it has one; every call and `new` inside one of our nodes is
resolved with `checker.getResolvedSignature()` (falling back to the callee's symbol,
aliases followed) and its declaration mapped to our node, with the conventions of
edge/parse/javascript.py (see the .mjs for the details). Each call site gets a target
category (node, interface, abstract, value, anonymous, external, unresolved) and a
shape (`f()`, `this.m()`, `obj.m()`, `new X()`, ...). The sites are cached per corpus
and version in bench/results/ts-calls/ (redone with --refresh, or when the .mjs
changed).

Ours: `python -m edge analyze ROOT --graph` on the whole corpus root, as on a checkout;
CALLS edges with both ends in a measured source file (not .d.ts) are compared.

Scoring, on edges (caller node, callee node), as the graph keeps them:
- reference edges: sites whose target is one of our nodes, caller and callee matched to
  our nodes by (path, qualname), else by path + name + line containment. An overload
  signature counts as its implementation; `new X()` and `super()` as X's constructor, or
  the nearest in-project base class's, or else the class X.
- interface / abstract targets: a call through an interface method or an abstract
  method has no single in-project body, so it is neither a reference edge nor a miss.
  An edge of ours whose first call site (the edge's `line`) is such a call is
  "unscored": left out of precision, counted apart.
- calls through function-typed values (callbacks, parameters, properties), to
  in-project functions that are not nodes (object-literal methods, closures) and to
  code outside the source folder are not reference edges; an edge of ours at such a
  site is a false edge.
- precision = TP / (ours - unscored), recall = TP / reference; micro totals add counts.

Each miss is put down to the shape of its first reference site and to what ours has at
that line (another callee, or nothing); each false edge to what the type checker says
the call at its line is (another node, a callback, external code, ...). Reference edges
whose first site calls through a default import binding (`import X from './x.js'`; X(),
new X(), X.m()) are counted apart as well, found and missed.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from corpora import BY_NAME, DOWNLOADS, Corpus, archive_for, download, unpack

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CACHE = BENCH / "results" / "ts-calls"
SCRIPT = BENCH / "ts_calls.mjs"
TYPESCRIPT = BENCH / "node_modules" / "typescript" / "package.json"
OUR_PYTHON = REPO / ".venv" / "bin" / "python"

CORPUS_LIST: tuple[Corpus, ...] = (
    BY_NAME["rxjs"],
    Corpus("tanstack-query-core", "npm", "@tanstack/query-core", "5.108.4",
           "TypeScript classes holding each other in fields (`this.#cache.find()`), no tsconfig "
           "shipped", source_dirs=("src",)),
)


def search_corpora(names: tuple[str, ...]) -> tuple[Corpus, ...]:
    """These corpora as bench/search_corpora.py declares them (the search benchmark's).

    That module imports the docstring blanker, which needs tree-sitter: under a python
    without it the Corpus objects are read through the project's venv instead.
    """
    try:
        from search_corpora import BY_PROJECT
        return tuple(BY_PROJECT[n].corpus for n in names)
    except ImportError:
        pass
    code = ("import dataclasses, json, sys; sys.path.insert(0, sys.argv[1]); "
            "from search_corpora import BY_PROJECT; "
            "print(json.dumps([dataclasses.asdict(BY_PROJECT[n].corpus) for n in sys.argv[2:]]))")
    try:
        done = subprocess.run([str(OUR_PYTHON), "-c", code, str(BENCH), *names],
                              capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"bench/search_corpora.py could not be read ({error}): "
              f"{', '.join(names)} left out", file=sys.stderr)
        return ()
    return tuple(Corpus(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
                 for d in json.loads(done.stdout))


# Plain JavaScript corpora, measured only when named: the checker reads their .js
# sources (allowJs; CommonJS require/module.exports, ES modules, JSDoc types). webpack is
# CommonJS; lodash-es (one function per file, `function get(){…} export default get;`,
# the whole package root) and luxon (`export default class DateTime`) are ES modules
# with default exports, ws is CommonJS: the search benchmark's three plain-JS projects.
JS_CORPUS_LIST: tuple[Corpus, ...] = (BY_NAME["webpack"],
                                       *search_corpora(("lodash-es", "luxon", "ws")))
# More TypeScript, measured only when named: zod declares most of its schemas twice, an
# interface and a `const` of the same name (`interface $ZodString` + `const $ZodString =
# core.$constructor(…)`).
# React: @blueprintjs/core ships its .tsx sources (components rendering each other in
# JSX, function components, `forwardRef` consts and class components; tests and stories
# included). Its tsconfig extends a file the package leaves out: the checker's defaults,
# which read JSX as react-jsx. React's own types are not installed (nor in the corpus).
NAMED_CORPUS_LIST: tuple[Corpus, ...] = (
    BY_NAME["zod"],
    Corpus("blueprintjs-core", "npm", "@blueprintjs/core", "6.20.0",
           "React/TSX: components used in JSX (function, forwardRef, class), no usable "
           "tsconfig shipped", source_dirs=("src",)),
)
PLAIN_JS = frozenset(c.name for c in JS_CORPUS_LIST)
CORPORA = {c.name: c for c in CORPUS_LIST + NAMED_CORPUS_LIST + JS_CORPUS_LIST}

UNSCORED = ("interface", "abstract")  # dispatch: no single in-project body to point at

Key = tuple[str, str]  # (path, qualname)
Edge = tuple[int, int]  # (caller node id, callee node id)


class BenchError(Exception):
    """A tool could not be run or its output not read."""


# --- corpora ---------------------------------------------------------------------------

def prepare(corpus: Corpus) -> None:
    """Fetch once and unpack, with corpora.py's helpers."""
    if corpus.root.is_dir():
        return
    if corpus.package.startswith("@"):
        # `npm pack @scope/name` writes scope-name-VERSION.tgz, a name archive_for() only
        # finds under the unscoped spelling.
        packed = dataclasses.replace(corpus, package=corpus.package[1:].replace("/", "-"))
        if archive_for(packed) is None:
            DOWNLOADS.mkdir(parents=True, exist_ok=True)
            subprocess.run(["npm", "pack", "--silent", "--pack-destination", str(DOWNLOADS),
                            f"{corpus.package}@{corpus.version}"], check=True)
        archive = archive_for(packed)
    else:
        archive = download(corpus)
    if archive is None:
        raise BenchError(f"{corpus.name}: no archive in {DOWNLOADS}")
    unpack(corpus, archive)


def run(command: list[str], cwd: Path | None = None) -> tuple[str, float]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(f"{' '.join(command)} exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout, seconds


# --- the reference ---------------------------------------------------------------------

def script_digest() -> str:
    return hashlib.sha256(SCRIPT.read_bytes()).hexdigest()[:12]


def reference(corpus: Corpus, refresh: bool) -> dict:
    """The type checker's call sites, from the cache unless stale or --refresh."""
    if not TYPESCRIPT.exists():
        raise BenchError("bench/node_modules/typescript is missing: run bench/setup_tools.sh")
    cached = CACHE / f"{corpus.name}-{corpus.version}.json"
    if cached.exists() and not refresh:
        data = json.loads(cached.read_text())
        if data["meta"].get("script") == script_digest():
            data["meta"]["cached"] = True
            return data
        print(f"{corpus.name}: {SCRIPT.name} changed since the cached run; redoing it", file=sys.stderr)
    command = ["node", str(SCRIPT), str(corpus.root)]
    command += [arg for d in corpus.source_dirs for arg in ("--src", d)]
    if corpus.tsconfig:
        command += ["--tsconfig", corpus.tsconfig]
    if corpus.name in PLAIN_JS:
        command.append("--js")
    stdout, seconds = run(command)
    data = json.loads(stdout)
    data["meta"].update(script=script_digest(), wall_seconds=round(seconds, 2),
                        corpus=corpus.name, version=corpus.version)
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    data["meta"]["cached"] = False
    return data


# --- ours ------------------------------------------------------------------------------

@dataclass
class Graph:
    nodes: dict[int, dict]
    by_key: dict[Key, int]
    by_path: dict[str, list[dict]]
    calls: dict[Edge, dict]
    seconds: float

    def match(self, path: str | None, qualname: str, line: int | None) -> int | None:
        """Our node for a (path, qualname), else the innermost same-named node around line."""
        found = self.by_key.get((path, qualname))
        if found is not None or path is None:
            return found
        name = qualname.rsplit(".", 1)[-1]
        around = [n for n in self.by_path.get(path, ())
                  if n["name"].rsplit(".", 1)[-1] == name and line is not None
                  and n["start_line"] <= line <= n["end_line"]]
        return min(around, key=lambda n: n["end_line"] - n["start_line"])["id"] if around else None


def checkout_label(checkout: Path) -> str:
    """Which analyzer was measured: the checkout's commit, "+dirty" with local changes."""
    try:
        commit, _ = run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"])
        status, _ = run(["git", "-C", str(checkout), "status", "--porcelain", "--", "edge", "shared"])
    except (BenchError, OSError):
        return f"{checkout} (not a git checkout)"
    return commit.strip() + ("+dirty" if status.strip() else "")


def in_measured(corpus: Corpus, path: str) -> bool:
    # "." (lodash-es: the package root is the source folder) holds every path
    return (any(d in (".", "./", "") or path.startswith(d.rstrip("/") + "/")
                for d in corpus.source_dirs)
            and not path.endswith((".d.ts", ".d.mts", ".d.cts")))


def ours(corpus: Corpus, checkout: Path) -> Graph:
    # cwd picks the `edge` package: this checkout, or another one (--edge-from) to compare
    # two versions of the analyzer on the same reference.
    stdout, seconds = run([str(OUR_PYTHON), "-m", "edge", "analyze", str(corpus.root), "--graph"],
                          cwd=checkout)
    graph = json.loads(stdout)
    nodes = {n["id"]: n for n in graph["nodes"]
             if n["kind"] != "file" and in_measured(corpus, n["path"])}
    by_path: dict[str, list[dict]] = defaultdict(list)
    for n in nodes.values():
        by_path[n["path"]].append(n)
    calls = {(e["src"], e["dst"]): e for e in graph["edges"]
             if e["kind"] == "CALLS" and e["src"] in nodes and e["dst"] in nodes}
    by_key = {(n["path"], n["name"]): i for i, n in nodes.items()}
    return Graph(nodes, by_key, dict(by_path), calls, seconds)


# --- comparing -------------------------------------------------------------------------

@dataclass
class Result:
    corpus: Corpus
    sites: Counter = field(default_factory=Counter)  # reference sites by target category
    reference: dict[Edge, list[dict]] = field(default_factory=dict)
    unmatched: list[dict] = field(default_factory=list)  # node sites we have no node for
    ours: int = 0
    tp: int = 0
    unscored: list[dict] = field(default_factory=list)
    misses: list[dict] = field(default_factory=list)
    false: list[dict] = field(default_factory=list)
    shapes: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    # reference edges whose first site calls through a default import (`import X from`)
    default_import: Counter = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    node_agreement: dict = field(default_factory=dict)

    @property
    def scored(self) -> int:
        return self.ours - len(self.unscored)

    @property
    def precision(self) -> float | None:
        return self.tp / self.scored if self.scored else None

    @property
    def recall(self) -> float | None:
        return self.tp / len(self.reference) if self.reference else None


def compare(corpus: Corpus, refresh: bool, checkout: Path) -> Result:
    prepare(corpus)
    ref = reference(corpus, refresh)
    graph = ours(corpus, checkout)
    result = Result(corpus, meta=ref["meta"])
    result.seconds = {"reference": ref["meta"].get("wall_seconds", 0.0), "ours": round(graph.seconds, 2)}
    sites_at = index_sites(ref["sites"])
    result.node_agreement = node_agreement(ref.get("nodes", []), graph)
    collect_reference(result, graph, ref["sites"])
    result.ours = len(graph.calls)
    for edge, sites in result.reference.items():
        shape = sites[0]["shape"]
        result.shapes[shape]["reference"] += 1
        via_default = sites[0].get("default_import", False)
        result.default_import["reference"] += via_default
        if edge in graph.calls:
            result.tp += 1
            result.shapes[shape]["found"] += 1
            result.default_import["found"] += via_default
        else:
            result.misses.append(explain_miss(edge, sites, graph))
            result.shapes[shape]["missed"] += 1
    for edge, data in graph.calls.items():
        if edge not in result.reference:
            judged = explain_ours(edge, data, graph, sites_at)
            if judged["cause"].startswith("TS: interface") or judged["cause"].startswith("TS: abstract"):
                result.unscored.append(judged)
            else:
                result.false.append(judged)
                result.shapes[judged["shape"]]["false"] += 1
    return result


def node_agreement(walked: list[list], graph: Graph) -> dict:
    """Do the .mjs's nodes match the parser's? Sites of a node only one side has can't match."""
    theirs = {(p, q) for p, q, *_ in walked}
    mine = set(graph.by_key)
    return {"ours": len(mine), "reference_walk": len(theirs), "common": len(mine & theirs),
            "only_ours": sorted(f"{p}:{q}" for p, q in mine - theirs)[:20],
            "only_reference_walk": sorted(f"{p}:{q}" for p, q in theirs - mine)[:20]}


def index_sites(sites: list[dict]) -> dict[tuple[str, str, int], list[dict]]:
    """Reference sites by (path, caller qualname, line): where an edge of ours points."""
    found = defaultdict(list)
    for site in sites:
        found[(site["path"], site["caller_qualname"], site["line"])].append(site)
    return found


def collect_reference(result: Result, graph: Graph, sites: list[dict]) -> None:
    for site in sites:
        result.sites[site["target"]] += 1
        if site["target"] != "node":
            continue
        caller = graph.match(site["path"], site["caller_qualname"], site["line"])
        callee = graph.match(site["callee_path"], site["callee_qualnames"][0], site["callee_def_line"])
        if caller is None or callee is None:
            result.unmatched.append(site)  # a naming mismatch between the .mjs and our parser
            continue
        result.reference.setdefault((caller, callee), []).append(site)
    for edge_sites in result.reference.values():
        edge_sites.sort(key=lambda s: s["line"])


def describe(graph: Graph, node_id: int) -> str:
    node = graph.nodes[node_id]
    return f"{node['path']}:{node['name']}"


# Callees our parser does not record at all (edge/parse/javascript.py keeps identifiers
# and dotted chains): the miss is by design, not a failed resolution.
UNRECORDED_SHAPES = ("complex f().m()", "a?.m()", "super()", "new (complex)")


def explain_miss(edge: Edge, sites: list[dict], graph: Graph) -> dict:
    """A reference edge ours lacks: not recorded, resolved elsewhere, or not resolved."""
    first = sites[0]
    callee_name = graph.nodes[edge[1]]["name"].rsplit(".", 1)[-1]
    at_line = [dst for (src, dst), e in graph.calls.items()
               if src == edge[0] and e.get("line") == first["line"]]
    same_name = [dst for dst in at_line if graph.nodes[dst]["name"].rsplit(".", 1)[-1] == callee_name]
    if first["shape"] in UNRECORDED_SHAPES:
        cause = "callee not recorded by our parser"
    elif same_name:
        cause = "ours: another node of that name"
    else:
        cause = "ours: not resolved"
    return {"caller": describe(graph, edge[0]), "callee": describe(graph, edge[1]),
            "shape": first["shape"], "cause": cause, "line": first["line"],
            "call_text": first["call_text"], "sites": len(sites), "overload": first["overload"],
            "default_import": first.get("default_import", False),
            "ours_at_line": [describe(graph, dst) for dst in same_name or at_line]}


def explain_ours(edge: Edge, data: dict, graph: Graph, sites_at: dict) -> dict:
    """An edge of ours the reference lacks, with what the type checker says its call is."""
    caller, callee = graph.nodes[edge[0]], graph.nodes[edge[1]]
    sites = sites_at.get((caller["path"], caller["name"], data.get("line")), [])
    site = pick_site(sites, callee["name"].rsplit(".", 1)[-1])
    judged = {"caller": describe(graph, edge[0]), "callee": describe(graph, edge[1]),
              "line": data.get("line"), "shape": "(no call site)", "call_text": None,
              "cause": "no TS call site in this caller at that line", "ts_target": None}
    if site is not None:
        target = site["target"]
        judged.update(shape=site["shape"], call_text=site["call_text"],
                      ts_target=f"{site['callee_path']}:{','.join(site['callee_qualnames'])}",
                      cause=f"TS: {'another node' if target == 'node' else target}")
    return judged


def pick_site(sites: list[dict], name: str) -> dict | None:
    """The site at a line whose callee text names `name` (several calls can share a line)."""
    for site in sites:
        head = site["call_text"].split("(", 1)[0]
        if head.rsplit(".", 1)[-1].strip() == name or head.strip().endswith(f"new {name}"):
            return site
    return sites[0] if sites else None


# --- reporting -------------------------------------------------------------------------

def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def table(results: list[Result]) -> str:
    lines = ["| corpus | version | files | TS sites | ref edges | ours | unscored | TP "
             "| precision | recall | ref s | ours s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        lines.append(f"| {r.corpus.name} | {r.corpus.version} | {r.meta['files']} "
                     f"| {sum(r.sites.values())} | {len(r.reference)} | {r.ours} | {len(r.unscored)} "
                     f"| {r.tp} | {percent(r.precision)} | {percent(r.recall)} "
                     f"| {r.seconds['reference']:.1f} | {r.seconds['ours']:.1f} |")
    ref = sum(len(r.reference) for r in results)
    tp = sum(r.tp for r in results)
    scored = sum(r.scored for r in results)
    lines.append(f"| **micro** | | | {sum(sum(r.sites.values()) for r in results)} | {ref} "
                 f"| {sum(r.ours for r in results)} | {sum(len(r.unscored) for r in results)} "
                 f"| {tp} | {percent(tp / scored if scored else None)} "
                 f"| {percent(tp / ref if ref else None)} | | |")
    return "\n".join(lines)


def shape_table(result: Result) -> str:
    lines = [f"{result.corpus.name}: by call-site shape (edges; a reference edge by its first site)",
             f"  {'shape':26} {'ref':>5} {'found':>6} {'missed':>7} {'recall':>7} {'false':>6}"]
    rows = sorted(result.shapes.items(), key=lambda kv: -(kv[1]["reference"] + kv[1]["false"]))
    for shape, c in rows:
        recall = percent(c["found"] / c["reference"]) if c["reference"] else "—"
        lines.append(f"  {shape:26} {c['reference']:5} {c['found']:6} {c['missed']:7} "
                     f"{recall:>7} {c['false']:6}")
    return "\n".join(lines)


def causes(result: Result) -> str:
    lines = [f"{result.corpus.name}: reference sites by TS target: "
             + ", ".join(f"{k} {v}" for k, v in result.sites.most_common())]
    agree = result.node_agreement
    lines.append(f"  nodes: ours {agree['ours']}, the .mjs's walk {agree['reference_walk']}, "
                 f"same (path, qualname) {agree['common']}")
    for side in ("only_ours", "only_reference_walk"):
        if agree[side]:
            lines.append(f"    {side}: {', '.join(agree[side][:5])}")
    if result.default_import["reference"]:
        via = result.default_import
        missed = Counter(m["shape"] for m in result.misses if m["default_import"])
        lines.append(f"  through a default import (`import X from`; X(), new X(), X.m()): "
                     f"{via['reference']} reference edges, {via['found']} found, "
                     f"{via['reference'] - via['found']} missed"
                     + (" (" + ", ".join(f"{shape} {n}" for shape, n in missed.most_common()) + ")"
                        if missed else ""))
    if result.unmatched:
        lines.append(f"  {len(result.unmatched)} node sites with no matching node of ours "
                     f"(naming mismatch), e.g. " + "; ".join(
                         f"{s['path']}:{s['line']} {s['caller_qualname']} -> "
                         f"{s['callee_path']}:{s['callee_qualnames'][0]}" for s in result.unmatched[:3]))
    for title, items in (("misses", result.misses), ("false edges", result.false),
                         ("unscored (interface/abstract)", result.unscored)):
        counted = Counter((i["cause"], i["shape"]) for i in items)
        lines.append(f"  {title}: {len(items)}")
        for (cause, shape), n in counted.most_common():
            lines.append(f"    {n:4} {cause:40} {shape}")
    return "\n".join(lines)


def examples(result: Result, count: int) -> str:
    lines = []
    for title, items in (("misses", result.misses), ("false edges", result.false),
                         ("unscored", result.unscored)):
        by_shape = defaultdict(list)
        for item in items:
            by_shape[(item["cause"], item["shape"])].append(item)
        for (cause, shape), group in sorted(by_shape.items(), key=lambda kv: -len(kv[1])):
            lines.append(f"{result.corpus.name} {title} — {cause} — {shape} ({len(group)})")
            for item in group[:count]:
                lines.append(f"    {item['caller']} -> {item['callee']}  line {item['line']}: "
                             f"{item['call_text']}" + extra(item))
    return "\n".join(lines)


def extra(item: dict) -> str:
    if item.get("ours_at_line"):
        return f"  [ours at that line: {', '.join(item['ours_at_line'][:3])}]"
    if item.get("ts_target"):
        return f"  [TS: {item['ts_target']}]"
    return ""


def as_json(result: Result) -> dict:
    return {
        "corpus": result.corpus.name, "version": result.corpus.version,
        "source_dirs": list(result.corpus.source_dirs), "tsconfig": result.corpus.tsconfig,
        "reference_meta": result.meta, "seconds": result.seconds,
        "sites_by_target": dict(result.sites), "node_agreement": result.node_agreement, "reference_edges": len(result.reference),
        "ours": result.ours, "unscored": len(result.unscored), "tp": result.tp,
        "precision": result.precision, "recall": result.recall,
        "by_shape": {k: dict(v) for k, v in result.shapes.items()},
        "default_import": dict(result.default_import),
        "misses": result.misses, "false_edges": result.false,
        "unscored_edges": result.unscored, "unmatched_sites": result.unmatched,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=(
        f"corpora (default: {', '.join(c.name for c in CORPUS_LIST)}; also: "
        f"{', '.join(c.name for c in NAMED_CORPUS_LIST + JS_CORPUS_LIST)})"))
    parser.add_argument("--refresh", action="store_true", help="rerun the type checker")
    parser.add_argument("--examples", type=int, default=0, metavar="N",
                        help="print N examples per (cause, shape)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results as JSON")
    parser.add_argument("--edge-from", type=Path, default=REPO, metavar="DIR",
                        help="run `python -m edge` from this checkout (default: this one)")
    parser.add_argument("--edge-label", metavar="TEXT",
                        help="what --edge-from is, for the record (default: its git commit)")
    args = parser.parse_args()
    unknown = set(args.names) - CORPORA.keys()
    if unknown:
        parser.error(f"unknown corpora: {sorted(unknown)}; known: {sorted(CORPORA)}")
    started = time.perf_counter()
    results = []
    for name in args.names or [c.name for c in CORPUS_LIST]:
        try:
            results.append(compare(CORPORA[name], args.refresh, args.edge_from.resolve()))
        except BenchError as error:
            print(f"{name}: {error}", file=sys.stderr)
    elapsed = time.perf_counter() - started
    analyzer = args.edge_label or checkout_label(args.edge_from.resolve())
    if args.json:  # first: a reader piping the report into `head` still gets the file
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"seconds": round(elapsed, 2), "analyzer": analyzer,
                                         "edge_from": str(args.edge_from),
                                         "corpora": [as_json(r) for r in results]}, indent=1) + "\n")
    print(report(results, args.examples))
    print(f"\nours: python -m edge from {args.edge_from} ({analyzer}); {elapsed:.1f} s in all")


def report(results: list[Result], examples_per_group: int) -> str:
    parts = [table(results)]
    for result in results:
        parts += ["", shape_table(result), causes(result)]
        if examples_per_group:
            parts.append(examples(result, examples_per_group))
    return "\n".join(parts)

if __name__ == "__main__":
    main()
