"""Accuracy of our Python call graph (CALLS edges) against a jedi reference.

    bench/.venv/bin/python bench/calls.py [CORPUS ...] [--json PATH] [--refresh]
        [--examples N] [--workers N] [--edge-from DIR [--edge-label TEXT]]

Method. For each corpus (pinned PyPI sdists, fetched once by bench/corpora.py's
helpers) the measured universe is the package's own .py files (the folders of
`Corpus.packages` under `Corpus.sys_path`; no tests, no docs).

Call sites come from Python's `ast`: every `Call` whose innermost enclosing
*function* is in the universe. The caller is that function, named like our
graph names it (enclosing classes and functions joined by dots, "Cls.meth.inner").
Python's own evaluation order decides the scope: decorators, default arguments
and class bases run in the enclosing scope; lambdas, comprehensions and the
body of a class nested in a function belong to the enclosing function; calls at
module or class-body level have no caller and are left out.

jedi (pinned in bench/setup_tools.sh) resolves each site: `Script(code, path,
project=Project(sys_path root))`, then `goto(line, col, follow_imports=True)`
at the last name of the called expression (`f` in `f()`, `m` in `a.b.m()`).
Results that are functions or classes are kept; where goto stops at something
else (a variable, parameter, statement, or nothing) `infer(line, col)` is asked
too and its functions and classes are kept. Several results are a union: all
count. A class is mapped to the `__init__` that runs: the class's own or the
first in-package base's in C3 MRO order (bases resolved by jedi too, bases
outside the package skipped); with none, the class itself. Likewise an
instance that `infer` gives (calling `obj()` where obj holds one) is mapped to
the `__call__` that runs, and dropped when no in-package class defines one. Targets outside the
universe are dropped; the rest are mapped to (file, qualified name) through the
target file's ast (the `def`/`class` line and name), not jedi's full_name.

Our graph is `python -m edge analyze ROOT --graph` on the whole unpacked corpus,
as on a checkout, cut to the same files (`--edge-from DIR` takes the `edge`
package from another checkout, e.g. the last commit's). Edges are compared as sets of
(caller, callee) pairs, folded over sites. Precision = common / ours, recall =
common / reference; totals are micro-averaged (summed counts).

Each missed edge (reference only) and false edge (ours only) is put down to the
shape of its call sites: plain `name()`, `self.m()`, `self.attr.m()`, `cls(...)`,
`cls.m()`, `super().m()`, `obj.m()` on a local or parameter, `mod.f()` on an
imported name, `Cls.m()`, `a.b.m()`, chained `f().m()`, a constructor call, or
an alias (the name called is not the target's own). False edges also carry what
jedi said at the same sites (nothing, only code outside the package, another
target), misses whether jedi gave several targets there. The JSON keeps every
such edge with its sites (file, line, call text).

jedi is slow, so its answers are cached per corpus and version in
bench/results/calls-reference-NAME-VERSION.json (reused unless --refresh, or
when the jedi version or the cache format changes); files are resolved in
parallel processes.
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpora import Corpus, count_loc, download, source_files, unpack  # noqa: E402

REPO = HERE.parent
RESULTS = HERE / "results"
OUR_PYTHON = REPO / ".venv" / "bin" / "python"
CACHE_FORMAT = 2  # bump when what the cache holds, or how it is computed, changes
SITE_TIMEOUT_S = 20  # jedi can recurse for a long time on a pathological position


def _py(name: str, version: str, shape: str, *packages: str, sys_path: str = "") -> Corpus:
    return Corpus(name, "pypi", name, version, shape, sys_path=sys_path, packages=packages)


CALL_CORPORA: tuple[Corpus, ...] = (
    _py("requests", "2.34.2", "HTTP client, method-heavy, partly typed", "requests",
        sys_path="src"),
    _py("flask", "3.1.3", "web framework, typed, context-local proxies", "flask",
        sys_path="src"),
    _py("rich", "15.0.0", "terminal rendering, large, typed, protocol-heavy", "rich"),
    _py("click", "8.5.1", "CLI framework, class hierarchy, typed", "click", sys_path="src"),
    _py("jinja2", "3.1.6", "template compiler, visitor dispatch, typed", "jinja2",
        sys_path="src"),
    _py("httpx", "0.29.0", "HTTP client, fully typed, sync and async twins", "httpx"),
    _py("attrs", "26.1.0", "class decorators, generated code, two packages", "attr", "attrs",
        sys_path="src"),
    _py("boltons", "26.2.0", "grab-bag utilities, untyped, older style", "boltons"),
    # Added after the call resolution was written: never looked at while tuning it.
    _py("werkzeug", "3.1.9", "WSGI toolkit, large, typed, data structures", "werkzeug",
        sys_path="src"),
    _py("starlette", "1.10.0", "ASGI framework, fully typed, async", "starlette"),
)
BY_NAME = {c.name: c for c in CALL_CORPORA}

Key = tuple[str, str]  # (file relative to the corpus root, qualified name)
Edge = tuple[Key, Key]


# --------------------------------------------------------------------------- call sites (ast)

@dataclass
class Site:
    path: str
    caller: str
    line: int
    col: int  # character column of the last name, as jedi counts it
    name: str | None  # the last name of the called expression; None for `f()()`, `x[0]()`
    text: str
    receiver: str  # the shape of the called expression, see `receiver_shape`

    @property
    def at(self) -> str:
        return f"{self.line}:{self.col}"


@dataclass
class ClassInfo:
    qual: str
    bases: list[tuple[int, int]]  # position of each base's last name


@dataclass
class FileScan:
    path: str
    sites: list[Site] = field(default_factory=list)
    # (def line, name) -> (qualified name, "class" | "function")
    defs: dict[tuple[int, str], tuple[str, str]] = field(default_factory=dict)
    classes: list[ClassInfo] = field(default_factory=list)


def _char_col(lines: list[str], line: int, byte_col: int) -> int:
    # ast columns are UTF-8 byte offsets; jedi's are characters.
    text = lines[line - 1] if line - 1 < len(lines) else ""
    return len(text.encode()[:byte_col].decode(errors="replace"))


def _segment(lines: list[str], node: ast.expr) -> str:
    """A node's source text (ast.get_source_segment re-splits the whole file per call)."""
    first, last = node.lineno - 1, node.end_lineno - 1
    if first == last:
        return lines[first].encode()[node.col_offset:node.end_col_offset].decode(errors="replace")
    return "\n".join([lines[first].encode()[node.col_offset:].decode(errors="replace"),
                      *lines[first + 1:last],
                      lines[last].encode()[:node.end_col_offset].decode(errors="replace")])


def _last_name_position(expr: ast.expr) -> tuple[int, int, str] | None:
    """(line, byte column, name) of the last name of a called expression."""
    if isinstance(expr, ast.Name):
        return expr.lineno, expr.col_offset, expr.id
    if isinstance(expr, ast.Attribute):  # the attribute name ends the node
        return expr.end_lineno, expr.end_col_offset - len(expr.attr.encode()), expr.attr
    if isinstance(expr, ast.Subscript):  # a base like Generic[T]
        return _last_name_position(expr.value)
    return None


def _import_names(tree: ast.AST) -> set[str]:
    """Every name an import statement binds, at any level of the file."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add(alias.asname or alias.name.split(".")[0])
    return names


def _function_locals(func: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    """Parameters and names assigned in the function's own scope (nested scopes skipped)."""
    args = func.args
    names = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    names |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    body = func.body if isinstance(func.body, list) else [func.body]
    declared_global: set[str] = set()
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            declared_global.update(node.names)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        stack.extend(ast.iter_child_nodes(node))
    return names - declared_global


def _is_dotted(expr: ast.expr) -> bool:
    while isinstance(expr, ast.Attribute):
        expr = expr.value
    return isinstance(expr, ast.Name)


def receiver_shape(func: ast.expr, local: bool, imported: set[str], classes: set[str]) -> str:
    """What is called, by syntax and by what binds the receiver name.

    `local` answers "is this receiver name a local or parameter of the caller
    or an enclosing function" (names bound by import statements are not
    locals: a function-level `import x` counts as imported).
    """
    if isinstance(func, ast.Name):
        return "cls(...)" if func.id == "cls" else "name()"
    if not isinstance(func, ast.Attribute):
        return "complex callee"  # f()(), x[0](), (a or b)()
    value = func.value
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) \
            and value.func.id == "super":
        return "super().m()"
    if isinstance(value, ast.Name):
        name = value.id
        if name in ("self", "cls"):
            return f"{name}.m()"
        if local:
            return "obj.m() local/param"
        if name in imported:
            return "mod.f() imported"
        return "Cls.m()" if name in classes else "global.m()"
    if isinstance(value, ast.Attribute) and isinstance(value.value, ast.Name) \
            and value.value.id == "self":
        return "self.attr.m()"
    return "a.b.m() dotted" if _is_dotted(value) else "f().m() chained/complex"


class _Scanner(ast.NodeVisitor):
    """Walks one module: definitions with qualified names, and call sites with callers."""

    def __init__(self, path: str, code: str, tree: ast.Module):
        self.scan = FileScan(path)
        # read_text turned every line end into "\n"; str.splitlines would also split at
        # form feeds and the like, which neither ast nor jedi count as line ends.
        self.lines = code.split("\n")
        self.imported = _import_names(tree)
        self.module_classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
        self.scope: list[tuple[str, str]] = []  # (kind, name), outermost first
        self.locals: list[set[str]] = []  # one per enclosing function

    def _qual(self, name: str) -> str:
        return ".".join([n for _, n in self.scope] + [name])

    def _caller(self) -> str | None:
        # The innermost function; a class body inside a function runs as part of it.
        for depth in range(len(self.scope), 0, -1):
            if self.scope[depth - 1][0] == "function":
                return ".".join(n for _, n in self.scope[:depth])
        return None

    def _visit_all(self, nodes) -> None:
        for node in nodes:
            if node is not None:
                self.visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        # Decorators, defaults and annotations run when the def runs: enclosing scope.
        args = node.args
        self._visit_all(node.decorator_list)
        self._visit_all(args.defaults + args.kw_defaults)
        self._visit_all([a.annotation for a in args.posonlyargs + args.args + args.kwonlyargs])
        self._visit_all([a.annotation for a in (args.vararg, args.kwarg) if a is not None])
        self._visit_all([node.returns])
        self.scan.defs[(node.lineno, node.name)] = (self._qual(node.name), "function")
        self.scope.append(("function", node.name))
        self.locals.append(_function_locals(node))
        self._visit_all(node.body)
        self.locals.pop()
        self.scope.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._visit_all(node.decorator_list)
        self._visit_all(node.bases)
        self._visit_all(node.keywords)
        qual = self._qual(node.name)
        self.scan.defs[(node.lineno, node.name)] = (qual, "class")
        bases = [_last_name_position(b) for b in node.bases]
        self.scan.classes.append(ClassInfo(qual, [
            (line, _char_col(self.lines, line, col)) for line, col, _ in filter(None, bases)]))
        self.scope.append(("class", node.name))
        self._visit_all(node.body)
        self.scope.pop()

    def visit_Lambda(self, node: ast.Lambda) -> None:
        # A lambda's calls are attributed to the enclosing function (ours does the same).
        self.locals.append(_function_locals(node))
        self.generic_visit(node)
        self.locals.pop()

    def visit_Call(self, node: ast.Call) -> None:
        caller = self._caller()
        if caller is not None:
            self.scan.sites.append(self._site(node, caller))
        self.generic_visit(node)

    def _site(self, node: ast.Call, caller: str) -> Site:
        func = node.func
        position = _last_name_position(func) if not isinstance(func, ast.Subscript) else None
        receiver_name = func.value.id if isinstance(func, ast.Attribute) \
            and isinstance(func.value, ast.Name) else None
        local = receiver_name is not None and any(receiver_name in s for s in self.locals)
        shape = receiver_shape(func, local, self.imported, self.module_classes)
        text = " ".join(_segment(self.lines, func).split())
        text = (text if len(text) <= 70 else text[:67] + "...") + "()"
        if position is None:
            return Site(self.scan.path, caller, node.lineno, _char_col(
                self.lines, node.lineno, node.col_offset), None, text, shape)
        line, col, name = position
        return Site(self.scan.path, caller, line, _char_col(self.lines, line, col), name,
                    text, shape)


def scan_file(root: Path, rel: str) -> FileScan:
    code = (root / rel).read_text(encoding="utf-8", errors="replace")
    try:
        tree = ast.parse(code, filename=rel)
    except SyntaxError:
        return FileScan(rel)  # Python 2 leftovers and the like: nothing to measure
    scanner = _Scanner(rel, code, tree)
    scanner.visit(tree)
    return scanner.scan


# --------------------------------------------------------------------------- jedi (workers)

class _Timeout(Exception):
    pass


class _Resolver:
    """One process's jedi state for one corpus: the universe and the def index of each file."""

    def __init__(self, root: str, sys_root: str, universe: list[str]):
        import jedi  # only the reference needs it; the main process imports it lazily
        self.jedi = jedi
        self.root = Path(root)
        self.project = jedi.Project(sys_root)
        self.universe = {str((self.root / rel).resolve()): rel for rel in universe}
        self.defs: dict[str, dict] = {}

    def def_index(self, rel: str) -> dict[tuple[int, str], tuple[str, str]]:
        if rel not in self.defs:
            self.defs[rel] = scan_file(self.root, rel).defs
        return self.defs[rel]

    def resolve_file(self, rel: str) -> dict:
        scan = scan_file(self.root, rel)
        code = (self.root / rel).read_text(encoding="utf-8", errors="replace")
        self.defs[rel] = scan.defs
        script = self._script(code, rel)
        sites, bases = {}, {}
        for site in scan.sites:
            if site.name is None:
                continue
            answer, script = self._guarded(script, code, rel, site.line, site.col)
            sites[site.at] = answer
        for info in scan.classes:
            found = []
            for line, col in info.bases:
                answer, script = self._guarded(script, code, rel, line, col)
                found += [t[:2] for t in answer.get("t", []) if t[2] == "class"]
            bases[info.qual] = found
        return {"sites": sites, "bases": bases}

    def _script(self, code: str, rel: str):
        return self.jedi.Script(code, path=str(self.root / rel), project=self.project)

    def _guarded(self, script, code: str, rel: str, line: int, col: int, retry: bool = True):
        """jedi's answer at one position, bounded in time; a fresh Script after a timeout."""
        def alarm(signum, frame):
            raise _Timeout()
        previous = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, SITE_TIMEOUT_S)
        try:
            return self._answer(script, line, col), script
        except _Timeout:
            return {"s": "timeout"}, self._script(code, rel)
        except Exception as error:  # jedi has its own bugs; one position must not stop a run
            if retry:  # e.g. EOFError when jedi's inspection subprocess died: once more, fresh
                return self._guarded(self._script(code, rel), code, rel, line, col, retry=False)
            return {"s": "error", "x": [f"{type(error).__name__}: {error}"[:120]]}, script
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def _answer(self, script, line: int, col: int) -> dict:
        names = script.goto(line, col, follow_imports=True)
        kept = [n for n in names if n.type in ("function", "class")]
        if len(kept) < len(names) or not names:
            # goto stopped at a variable, parameter or statement: ask what it holds. An
            # instance is kept too: calling it runs its class's __call__.
            kept += [n for n in script.infer(line, col)
                     if n.type in ("function", "class", "instance")]
            others = {n.type for n in names} - {"function", "class"}
        else:
            others = set()
        targets, outside, unmapped = [], [], []
        for name in kept:
            target = self._target(name)
            if target is None:
                outside.append(name.full_name or name.name)
            elif target == "unmapped":
                unmapped.append(f"{name.module_path}:{name.line} {name.name}")
            elif target not in targets:
                targets.append(target)
        return self._status(targets, outside, unmapped, others)

    @staticmethod
    def _status(targets, outside, unmapped, others) -> dict:
        if targets:
            return {"s": "ok", "t": targets}
        if unmapped:
            return {"s": "unmapped", "x": unmapped[:3]}
        if outside:
            return {"s": "outside", "x": sorted(set(outside))[:3]}
        return {"s": "nothing", "x": sorted(others)}

    def _target(self, name) -> list | str | None:
        """[file, qualname, kind] for a definition in the universe; None outside it."""
        if name.module_path is None:
            return None
        rel = self.universe.get(str(Path(name.module_path).resolve()))
        if rel is None:
            return None
        found = self.def_index(rel).get((name.line, name.name))
        if found is None:
            return "unmapped"  # e.g. a lambda bound to a name: no node in either graph
        return [rel, found[0], "instance" if name.type == "instance" else found[1]]


_RESOLVER: _Resolver | None = None


def _init_worker(root: str, sys_root: str, universe: list[str]) -> None:
    global _RESOLVER
    _RESOLVER = _Resolver(root, sys_root, universe)


def _resolve_task(rel: str) -> tuple[str, dict, float]:
    started = time.monotonic()
    return rel, _RESOLVER.resolve_file(rel), time.monotonic() - started


# --------------------------------------------------------------------------- reference

def prepare(corpus: Corpus) -> list[str]:
    """Fetch and unpack once; the universe's files relative to the corpus root."""
    unpack(corpus, download(corpus))
    return [p.relative_to(corpus.root).as_posix() for p in source_files(corpus)]


def cache_path(corpus: Corpus) -> Path:
    return RESULTS / f"calls-reference-{corpus.name}-{corpus.version}.json"


def jedi_version() -> str:
    import jedi
    return jedi.__version__


def load_reference(corpus: Corpus, universe: list[str], refresh: bool, workers: int) -> dict:
    path = cache_path(corpus)
    if path.exists() and not refresh:
        cached = json.loads(path.read_text())
        if cached.get("format") == CACHE_FORMAT and cached.get("jedi") == jedi_version() \
                and sorted(cached["files"]) == sorted(universe):
            print(f"{corpus.name}: jedi reference from {path.relative_to(REPO)}", file=sys.stderr)
            return cached
    cached = build_reference(corpus, universe, workers)
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(cached, separators=(",", ":"), sort_keys=True) + "\n")
    return cached


def build_reference(corpus: Corpus, universe: list[str], workers: int) -> dict:
    started = time.monotonic()
    # Largest files first, so one big file does not finish alone at the end.
    order = sorted(universe, key=lambda rel: -(corpus.root / rel).stat().st_size)
    sys_root = str(corpus.root / corpus.sys_path)
    files, slowest = {}, []
    with multiprocessing.get_context("fork").Pool(
            workers, _init_worker, (str(corpus.root), sys_root, universe)) as pool:
        for done, (rel, answer, seconds) in enumerate(pool.imap_unordered(_resolve_task, order), 1):
            files[rel] = answer
            slowest.append((seconds, rel))
            if done % 10 == 0 or done == len(order):
                print(f"{corpus.name}: jedi {done}/{len(order)} files, "
                      f"{time.monotonic() - started:.0f} s", file=sys.stderr)
    slowest.sort(reverse=True)
    return {"format": CACHE_FORMAT, "jedi": jedi_version(), "corpus": corpus.name,
            "version": corpus.version, "workers": workers,
            "seconds": round(time.monotonic() - started, 1),
            "slowest_files": [[rel, round(s, 1)] for s, rel in slowest[:5]], "files": files}


def _mro(cls: Key, bases: dict[Key, list[Key]], memo: dict, active: frozenset = frozenset()) \
        -> list[Key]:
    """C3 linearization over in-package bases; left-to-right DFS where C3 has no answer."""
    if cls in memo:
        return memo[cls]
    if cls in active:  # a cycle from a mis-resolved base
        return [cls]
    direct = [b for b in bases.get(cls, []) if b != cls]
    seqs = [list(_mro(b, bases, memo, active | {cls})) for b in direct] + [list(direct)]
    result = [cls]
    while seqs := [s for s in seqs if s]:
        head = next((s[0] for s in seqs if not any(s[0] in t[1:] for t in seqs)), None)
        if head is None:
            result += [k for s in seqs for k in s if k not in result]
            break
        result.append(head)
        for s in seqs:
            if s[0] == head:
                del s[0]
    memo[cls] = list(dict.fromkeys(result))
    return memo[cls]


NAMELESS = {"s": "no callee name"}  # `f()()`, `x[0]()`: jedi is not asked


@dataclass
class Reference:
    edges: dict[Edge, list[Site]]
    answers: dict[tuple[str, str], dict]  # (file, "line:col") -> jedi's answer, named sites
    sites: dict[tuple[str, str], list[Site]]  # (file, caller) -> its sites
    site_status: Counter
    kinds: dict[Key, str]  # every definition in the universe: "class" | "function"
    seconds: float

    def answer(self, site: Site) -> dict:
        # A nameless callee shares its position with the inner call (`f` of `f()()`).
        return NAMELESS if site.name is None else self.answers[(site.path, site.at)]


def reference_edges(corpus: Corpus, scans: dict[str, FileScan], cached: dict) -> Reference:
    kinds = {(rel, qual): kind for rel, scan in scans.items() for qual, kind in scan.defs.values()}
    bases = {(rel, qual): [tuple(b) for b in found]
             for rel, answer in cached["files"].items() for qual, found in answer["bases"].items()}
    memo: dict = {}

    def method(cls: Key, name: str) -> Key | None:
        for klass in _mro(cls, bases, memo):
            found = (klass[0], f"{klass[1]}.{name}")
            if kinds.get(found) == "function":
                return found
        return None

    def callee(path: str, qual: str, kind: str) -> Key | None:
        if kind == "class":  # the __init__ that runs, else the class itself
            return method((path, qual), "__init__") or (path, qual)
        if kind == "instance":  # calling an instance runs its class's __call__
            return method((path, qual), "__call__")
        return path, qual

    edges: dict[Edge, list[Site]] = defaultdict(list)
    answers, by_caller, status = {}, defaultdict(list), Counter()
    for rel, scan in scans.items():
        stored = cached["files"][rel]["sites"]
        for site in scan.sites:
            by_caller[(rel, site.caller)].append(site)
            if site.name is None:
                status[NAMELESS["s"]] += 1
                continue
            answer = answers[(rel, site.at)] = stored.get(site.at, {"s": "not cached"})
            status[answer["s"]] += 1
            for path, qual, kind in answer.get("t", []):
                target = callee(path, qual, kind)
                if target is not None:
                    edges[((rel, site.caller), target)].append(site)
    return Reference(dict(edges), answers, dict(by_caller), status, kinds,
                     cached.get("seconds", 0.0))


# --------------------------------------------------------------------------- our graph

@dataclass
class Ours:
    edges: dict[Edge, int]  # -> first call site line
    kinds: dict[Key, str]
    seconds: float


def our_graph(corpus: Corpus, universe: set[str], edge_from: Path) -> Ours:
    """`python -m edge analyze ROOT --graph`, the `edge` package taken from `edge_from`."""
    started = time.monotonic()
    done = subprocess.run([str(OUR_PYTHON), "-m", "edge", "analyze", str(corpus.root), "--graph"],
                          cwd=edge_from, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{corpus.name}: edge analyze failed:\n{done.stderr[-2000:]}")
    graph = json.loads(done.stdout)
    nodes = {n["id"]: (n["path"], n["name"]) for n in graph["nodes"] if n["path"] in universe}
    kinds = {(n["path"], n["name"]): n["kind"] for n in graph["nodes"] if n["path"] in universe}
    edges: dict[Edge, int] = {}
    for e in graph["edges"]:
        if e["kind"] == "CALLS" and e["src"] in nodes and e["dst"] in nodes:
            edge = (nodes[e["src"]], nodes[e["dst"]])
            edges.setdefault(edge, e.get("line") or 0)
    if not edges:
        print(f"{corpus.name}: WARNING: our graph has no CALLS edge inside the package",
              file=sys.stderr)
    return Ours(edges, kinds, time.monotonic() - started)


# --------------------------------------------------------------------------- causes

def cause(site: Site, callee: Key, callee_kind: str | None) -> str:
    """Why an edge may be hard: the constructor and alias cases first, then the shape."""
    last = callee[1].rsplit(".", 1)[-1]
    constructor = callee_kind == "class" or (last == "__init__" and site.name != "__init__")
    if site.receiver == "cls(...)" or site.name is None:
        return site.receiver
    if constructor:
        return "Class() constructor"
    if last == "__call__" and site.name != "__call__":
        return "obj() __call__"
    if site.name != last:
        return "alias"
    return site.receiver


def edge_cause(sites: list[Site], callee: Key, callee_kind: str | None) -> str:
    if not sites:
        return "no call site found"
    # The most common cause over the sites; on a tie, the first site's (most_common is stable).
    return Counter(cause(s, callee, callee_kind) for s in sites).most_common(1)[0][0]


def callee_names(callee: Key) -> set[str]:
    """Names a call to this node may use: its own, and a class's for its __init__."""
    parts = callee[1].split(".")
    names = {parts[-1]}
    if parts[-1] == "__init__" and len(parts) > 1:
        names.add(parts[-2])
    return names


def sites_for_ours(edge: Edge, line: int, ref: Reference) -> list[Site]:
    """The caller's sites our edge most likely comes from: by name, else by its line."""
    caller_sites = ref.sites.get(edge[0], [])
    names = callee_names(edge[1])
    named = [s for s in caller_sites if s.name in names]
    return named or [s for s in caller_sites if s.line == line]


def jedi_verdict(sites: list[Site], ref: Reference) -> str:
    """What jedi said at the sites of one of our false edges."""
    statuses = [ref.answer(s)["s"] for s in sites]
    if not statuses:
        return "no site"
    if "ok" in statuses:
        return "jedi: other in-package target"
    for status in ("outside", "unmapped", "timeout", "error", "nothing", "no callee name"):
        if status in statuses:
            return f"jedi: {status}"
    return "jedi: " + statuses[0]


def site_record(site: Site, ref: Reference) -> dict:
    answer = ref.answer(site)
    record = {"file": site.path, "line": site.line, "call": site.text, "shape": site.receiver,
              "jedi": answer["s"]}
    if answer.get("t"):
        record["jedi_targets"] = [f"{p}::{q}" for p, q, _ in answer["t"]]
    if answer.get("x"):
        record["jedi_other"] = answer["x"]
    return record


# --------------------------------------------------------------------------- compare

def compare(corpus: Corpus, refresh: bool, workers: int, edge_from: Path) -> dict:
    universe = prepare(corpus)
    scans = {rel: scan_file(corpus.root, rel) for rel in universe}
    ref = reference_edges(corpus, scans, load_reference(corpus, universe, refresh, workers))
    ours = our_graph(corpus, set(universe), edge_from)
    ref_set, our_set = set(ref.edges), set(ours.edges)
    common = ref_set & our_set
    missed = [missed_record(e, ref, ours) for e in sorted(ref_set - our_set)]
    false = [false_record(e, ref, ours, ours.kinds.get(e[1])) for e in sorted(our_set - ref_set)]
    # Every edge's cause, for recall and precision per cause; a common edge's
    # sites are the reference's.
    ref_causes = Counter(edge_cause(sites, e[1], ref.kinds.get(e[1]))
                         for e, sites in ref.edges.items())
    our_causes = Counter(edge_cause(ref.edges[e], e[1], ref.kinds.get(e[1])) for e in common)
    our_causes.update(r["cause"] for r in false)
    return {
        "version": corpus.version, "shape": corpus.shape, "packages": list(corpus.packages),
        "files": len(universe), "loc": count_loc([corpus.root / r for r in universe]),
        "sites": sum(len(s.sites) for s in scans.values()), "jedi_sites": dict(ref.site_status),
        "reference": len(ref_set), "ours": len(our_set), "common": len(common),
        "precision": _ratio(len(common), len(our_set)), "recall": _ratio(len(common), len(ref_set)),
        "reference_by_cause": dict(ref_causes.most_common()),
        "ours_by_cause": dict(our_causes.most_common()),
        "missed_by_cause": _count(missed, "cause"), "false_by_cause": _count(false, "cause"),
        "false_by_jedi": _count(false, "jedi"),
        # jedi's unions (several targets at one site) are generous: how much rests on them.
        "reference_from_unions": sum(1 for sites in ref.edges.values()
                                     if all(len(ref.answer(s)["t"]) > 1 for s in sites)),
        "missed_from_unions": sum(1 for m in missed if m["jedi_union"]),
        "node_check": node_check(set(ref.kinds), set(ours.kinds)),
        "reference_seconds": ref.seconds, "our_seconds": round(ours.seconds, 2),
        "missed": missed, "false": false,
    }


def missed_record(edge: Edge, ref: Reference, ours: Ours) -> dict:
    sites = ref.edges[edge]
    kind = ref.kinds.get(edge[1])
    union = all(len(ref.answer(s)["t"]) > 1 for s in sites)
    ours_there = sorted({f"{d[0]}::{d[1]}" for (src, d), line in ours.edges.items()
                         if src == edge[0] and any(line == s.line for s in sites)})
    return {"caller": _key(edge[0]), "callee": _key(edge[1]),
            "cause": edge_cause(sites, edge[1], kind), "jedi_union": union,
            "ours_same_line": ours_there,
            "sites": [site_record(s, ref) for s in sites]}


def false_record(edge: Edge, ref: Reference, ours: Ours, kind: str | None) -> dict:
    sites = sites_for_ours(edge, ours.edges[edge], ref)
    return {"caller": _key(edge[0]), "callee": _key(edge[1]), "line": ours.edges[edge],
            "cause": edge_cause(sites, edge[1], kind), "jedi": jedi_verdict(sites, ref),
            "sites": [site_record(s, ref) for s in sites]}


def node_check(ref_defs: set[Key], our_nodes: set[Key]) -> dict:
    """Our nodes against the ast's definitions: a name mismatch would hide edges."""
    ours = {k for k in our_nodes if k[1]}
    return {"ast_defs": len(ref_defs), "our_nodes": len(ours),
            "only_ast": sorted(_key(k) for k in ref_defs - ours)[:20],
            "only_ast_count": len(ref_defs - ours), "only_ours_count": len(ours - ref_defs)}


def _key(key: Key) -> str:
    return f"{key[0]}::{key[1]}"


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def _count(records: list[dict], field_name: str) -> dict[str, int]:
    return dict(Counter(r[field_name] for r in records).most_common())


# --------------------------------------------------------------------------- report

def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def table(rows: dict[str, dict]) -> str:
    lines = ["| corpus | version | files | LOC | sites | ref edges | our edges | common "
             "| precision | recall | jedi s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['version']} | {r['files']} | {r['loc']} | {r['sites']} "
                     f"| {r['reference']} | {r['ours']} | {r['common']} "
                     f"| {percent(r['precision'])} | {percent(r['recall'])} "
                     f"| {r['reference_seconds']:.0f} |")
    total = totals(rows)
    lines.append(f"| **total** | | {total['files']} | {total['loc']} | {total['sites']} "
                 f"| {total['reference']} | {total['ours']} | {total['common']} "
                 f"| {percent(total['precision'])} | {percent(total['recall'])} "
                 f"| {total['reference_seconds']:.0f} |")
    return "\n".join(lines)


def totals(rows: dict[str, dict]) -> dict:
    summed = {k: sum(r[k] for r in rows.values())
              for k in ("files", "loc", "sites", "reference", "ours", "common", "reference_seconds",
                        "reference_from_unions", "missed_from_unions")}
    summed["precision"] = _ratio(summed["common"], summed["ours"])
    summed["recall"] = _ratio(summed["common"], summed["reference"])
    for group in ("reference_by_cause", "ours_by_cause", "missed_by_cause", "false_by_cause",
                  "false_by_jedi"):
        counter: Counter = Counter()
        for r in rows.values():
            counter.update(r[group])
        summed[group] = dict(counter.most_common())
    status: Counter = Counter()
    for r in rows.values():
        status.update(r["jedi_sites"])
    summed["jedi_sites"] = dict(status.most_common())
    return summed


def breakdown(rows: dict[str, dict], examples: int) -> str:
    total = totals(rows)
    out = [f"jedi at the {total['sites']} call sites: "
           + ", ".join(f"{k} {v}" for k, v in total["jedi_sites"].items())]
    for side, group, of, key in (
            ("missed (reference only) / reference edges", "missed_by_cause",
             "reference_by_cause", "missed"),
            ("false (ours only) / our edges", "false_by_cause", "ours_by_cause", "false")):
        out.append(f"\n{side}, by cause:")
        per_corpus = {name: r[group] for name, r in rows.items()}
        for reason, count in total[group].items():
            spread = ", ".join(f"{n} {c[reason]}" for n, c in per_corpus.items() if reason in c)
            out.append(f"  {count:5} / {total[of].get(reason, 0):<5} {reason:24} ({spread})")
            out += [f"         {line}" for line in _examples(rows, key, reason, examples)]
    out.append("\nall reference edges by cause (missed): " + ", ".join(
        f"{reason} {count} ({total['missed_by_cause'].get(reason, 0)})"
        for reason, count in total["reference_by_cause"].items()))
    out.append(f"\nreference edges resting only on sites where jedi gave several targets: "
               f"{total['reference_from_unions']}, of them missed: {total['missed_from_unions']}")
    out.append("\nfalse (ours only), by what jedi said at the same sites:")
    out += [f"  {count:5}  {reason}" for reason, count in total["false_by_jedi"].items()]
    return "\n".join(out)


def _examples(rows: dict[str, dict], key: str, reason: str, limit: int) -> list[str]:
    # Round-robin over corpora, so the examples are not all from the first one.
    pools = [[r for r in row[key] if r["cause"] == reason] for row in rows.values()]
    picked = []
    while len(picked) < limit and any(pools):
        for pool in pools:
            if pool and len(picked) < limit:
                picked.append(pool.pop(0))
    lines = []
    for record in picked:
        site = record["sites"][0] if record["sites"] else {}
        where = f"{site.get('file', record['caller'].split('::')[0])}:{site.get('line', '?')}"
        said = site.get("jedi_targets") or site.get("jedi_other") or [site.get("jedi", "")]
        lines.append(f"{where}  {site.get('call', '')}  {record['caller'].split('::')[1]} -> "
                     f"{record['callee'].split('::')[1]}  [jedi {site.get('jedi', '')}: "
                     f"{', '.join(map(str, said))[:100]}]")
    return lines


def git_state(edge_from: Path, label: str) -> dict:
    """Which analyzer was measured: the commit, and the edge/ sources as they were."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout
    digest = hashlib.sha256()
    for path in sorted((edge_from / "edge").rglob("*.py")):
        digest.update(path.relative_to(edge_from).as_posix().encode() + b"\0" + path.read_bytes())
    if edge_from.resolve() != REPO:
        return {"edge_from": str(edge_from), "label": label,
                "edge_sources_sha256": digest.hexdigest()}
    return {"label": label or "working tree", "commit": git("rev-parse", "HEAD").strip(),
            "dirty": sorted(line[3:] for line in git("status", "--porcelain").splitlines()
                            if line[3:].startswith("edge/")),
            "edge_sources_sha256": digest.hexdigest()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"corpora (default: all of {list(BY_NAME)})")
    parser.add_argument("--json", type=Path, help="write the results (with every difference) here")
    parser.add_argument("--refresh", action="store_true", help="rebuild the cached jedi reference")
    parser.add_argument("--examples", type=int, default=3, help="examples printed per cause")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="jedi processes (default: one per core)")
    parser.add_argument("--edge-from", type=Path, default=REPO,
                        help="run `python -m edge` from this checkout (default: this one), e.g. "
                             "`git archive HEAD | tar -x -C /tmp/head` to measure the last commit")
    parser.add_argument("--edge-label", default="",
                        help="what --edge-from is, kept in the JSON (e.g. 'HEAD 61a327a')")
    args = parser.parse_args()
    unknown = set(args.names) - BY_NAME.keys()
    if unknown:
        parser.error(f"unknown corpora: {sorted(unknown)}; known: {sorted(BY_NAME)}")
    started = time.monotonic()
    rows = {}
    for corpus in [BY_NAME[n] for n in args.names] if args.names else list(CALL_CORPORA):
        rows[corpus.name] = compare(corpus, args.refresh, args.workers, args.edge_from)
        print(f"{corpus.name}: P {percent(rows[corpus.name]['precision'])} "
              f"R {percent(rows[corpus.name]['recall'])}", file=sys.stderr)
    print(table(rows))
    print()
    print(breakdown(rows, args.examples))
    print(f"\n{time.monotonic() - started:.0f} s in all", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({
            "date": date.today().isoformat(), "jedi": jedi_version(),
            "ours": git_state(args.edge_from, args.edge_label), "totals": totals(rows),
            "corpora": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
