"""Every question's input, checked once, for every face (HTTP, page, MCP tools).

A request is a JSON object (a POST body) or a query string (a GET); both become a
frozen dataclass here or a QueryError(400) that names the field and the rule.
Unknown fields are refused: a misspelt `limt` silently ignored would answer a
question that was not asked. Repositories are normalised as POST /ingest does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from cloud.query.errors import bad_request
from cloud.query.glob import compile_glob
from shared.graph.model import EdgeKind
from shared.repo_url import InvalidRepoUrl, index_key, normalize_repo_url, valid_branch

MODES = ("hybrid", "semantic", "keyword", "structural")
KINDS = ("function", "method", "class", "file")
# A language filter names a family: TypeScript includes its TSX files.
LANGUAGES = {"python": ("python",), "javascript": ("javascript",),
             "typescript": ("typescript", "tsx"), "tsx": ("tsx",)}
LANGUAGE_ALIASES = {"py": "python", "js": "javascript", "jsx": "javascript",
                    "ts": "typescript"}
FORMATS = ("markdown", "json")
MAX_QUERY = 1_000
MAX_TASK = 4_000
MAX_LIMIT = 100
MAX_DEPTH = 10
MAX_RESULTS = 1_000  # graph answers are capped here and say when they were cut
MAX_FILES = 200
# Context budgets, for every face (HTTP, page, MCP): 16,000 cl100k tokens is about 64,000
# characters of code, and keeps an MCP answer under agent clients' own caps (Claude
# Code refuses tool output over 25,000 tokens by default).
BUDGET_RANGE = (256, 16_000)
DEFAULT_BUDGET = 2_048


@dataclass(frozen=True)
class SearchRequest:
    query: str
    repo: str | None = None
    mode: str = "hybrid"
    limit: int = 10
    path: str | None = None
    languages: tuple[str, ...] = ()
    kind: str | None = None


@dataclass(frozen=True)
class ContextRequest:
    task: str
    repo: str
    files: tuple[str, ...] = ()
    budget_tokens: int = DEFAULT_BUDGET
    format: str = "markdown"


@dataclass(frozen=True)
class ImpactRequest:
    repo: str
    files: tuple[str, ...] = ()
    base: str | None = None
    head: str | None = None


@dataclass(frozen=True)
class NodeRequest:
    """dependencies / dependents of a file or a symbol in it."""
    repo: str
    path: str
    symbol: str | None = None
    commit: str | None = None
    depth: int = 1
    kinds: tuple[str, ...] = ()
    limit: int = MAX_RESULTS


@dataclass(frozen=True)
class PathRequest:
    repo: str
    source: str
    target: str
    commit: str | None = None
    kinds: tuple[str, ...] = (EdgeKind.IMPORTS.value,)
    max_depth: int = MAX_DEPTH


@dataclass(frozen=True)
class SnapshotRequest:
    """hot spots, cycles, the whole snapshot: a repository and a cap."""
    repo: str
    commit: str | None = None
    limit: int = 20


# Where a question about one snapshot reads it: a repository, its branch's index (`ref`)
# and an indexed commit of it. Every graph question takes all three (Fields.repo reads
# `ref`, Fields.commit `commit`): one set, so no route can forget one of them.
SNAPSHOT_FIELDS = frozenset({"repo", "ref", "commit"})


def refuse_unknown(raw: Mapping, allowed: set[str] | frozenset[str]) -> None:
    """The rule of the module's docstring; the MCP tools refuse unknown arguments with it."""
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise bad_request(f"unknown field {unknown[0]!r}; allowed: "
                          f"{', '.join(sorted(allowed))}")


class Fields:
    """Typed reads of one request's fields; `strings` when it came as a query string."""

    def __init__(self, raw: Any, allowed: set[str], *, strings: bool, allow_local: bool):
        if not isinstance(raw, Mapping):
            raise bad_request("the body must be a JSON object")
        refuse_unknown(raw, allowed)
        self.raw, self.strings, self.allow_local = raw, strings, allow_local

    def text(self, name: str, maximum: int, required: bool = False) -> str | None:
        value = self.raw.get(name)
        if value is None:
            if required:
                raise bad_request(f"{name} is required")
            return None
        if not isinstance(value, str):
            raise bad_request(f"{name} must be a string")
        if not value.strip():
            raise bad_request(f"{name} must not be empty")
        if len(value) > maximum:
            raise bad_request(f"{name} is {len(value)} characters; at most {maximum}")
        if "\x00" in value:
            raise bad_request(f"{name} must not contain NUL")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.raw.get(name)
        if value is None:
            return default
        if self.strings and isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_request(f"{name} must be an integer")
        if not low <= value <= high:
            raise bad_request(f"{name} must be between {low} and {high}, got {value}")
        return value

    def choice(self, name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
        value = self.text(name, 40)
        if value is None:
            return default
        if value.lower() not in allowed:
            raise bad_request(f"{name} must be one of {' | '.join(allowed)}, got {value!r}")
        return value.lower()

    def repo(self, required: bool = True) -> str | None:
        """The repository, and with `ref` (a branch) that branch's index: its key
        (shared.repo_url.index_key; the service maps the default branch to the URL)."""
        value = self.text("repo", 2_000, required)
        ref = self.text("ref", 200)
        if value is None:
            if ref is not None:
                raise bad_request("ref needs repo: a branch is a branch of one repository")
            return None
        try:
            url = normalize_repo_url(value.strip(), allow_local=self.allow_local)
        except InvalidRepoUrl as exc:
            raise bad_request(f"repo: {exc}") from None
        if ref is not None and not valid_branch(ref.strip()):
            raise bad_request(f"ref must be a branch name, got {ref[:100]!r}")
        return index_key(url, ref.strip() if ref else None)

    def commit(self, name: str = "commit") -> str | None:
        value = self.text(name, 64)
        if value is None:
            return None
        value = value.strip().lower()
        if not 4 <= len(value) <= 64 or any(c not in "0123456789abcdef" for c in value):
            raise bad_request(f"{name} must be a commit sha (4-64 hex digits)")
        return value

    def paths(self, name: str, required: bool = False) -> tuple[str, ...]:
        value = self.raw.get(name)
        if value is None:
            if required:
                raise bad_request(f"{name} is required")
            return ()
        if self.strings and isinstance(value, str):
            value = [part for part in value.split(",") if part]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise bad_request(f"{name} must be a list of repository-relative paths")
        if len(value) > MAX_FILES:
            raise bad_request(f"{name} lists {len(value)} paths; at most {MAX_FILES}")
        return tuple(dict.fromkeys(clean_path(v, name) for v in value))

    def edge_kinds(self, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.raw.get("kinds")
        if value is None:
            return default
        if isinstance(value, str):
            value = [part for part in value.split(",") if part]
        allowed = [k.value for k in EdgeKind]
        if not isinstance(value, list) or not value:
            raise bad_request(f"kinds must name edge kinds: {', '.join(allowed)}")
        kinds = []
        for item in value:
            if not isinstance(item, str) or item.upper() not in allowed:
                raise bad_request(f"kinds: {item!r} is not one of {', '.join(allowed)}")
            kinds.append(item.upper())
        return tuple(sorted(set(kinds)))


def clean_path(path: str, name: str = "path") -> str:
    """A repository-relative POSIX path: './a/b.py' and 'a\\b.py' become 'a/b.py'."""
    cleaned = path.strip().replace("\\", "/")
    while cleaned.startswith("./"):
        cleaned = cleaned[2:]
    if not cleaned or cleaned.startswith("/") or len(cleaned) > 1_000 or "\x00" in cleaned \
            or ".." in cleaned.split("/"):
        raise bad_request(f"{name}: {path[:100]!r} is not a repository-relative path")
    return cleaned


def parse_search(raw: Any, allow_local: bool = False) -> SearchRequest:
    fields = Fields(raw, {"query", "repo", "ref", "mode", "limit", "path", "language", "kind"},
                    strings=False, allow_local=allow_local)
    query = fields.text("query", MAX_QUERY, required=True)
    language = fields.choice("language", tuple(LANGUAGES) + tuple(LANGUAGE_ALIASES), None)
    path = fields.text("path", 300)
    if path is not None:
        compile_glob(path)  # a malformed glob is refused here, before any work
    return SearchRequest(
        query=query, repo=fields.repo(required=False),
        mode=fields.choice("mode", MODES, "hybrid"),
        limit=fields.integer("limit", 10, 1, MAX_LIMIT), path=path,
        languages=LANGUAGES[LANGUAGE_ALIASES.get(language, language)] if language else (),
        kind=fields.choice("kind", KINDS, None))


def parse_context(raw: Any, allow_local: bool = False) -> ContextRequest:
    fields = Fields(raw, {"task", "repo", "ref", "files", "budget_tokens", "format"},
                    strings=False, allow_local=allow_local)
    return ContextRequest(
        task=fields.text("task", MAX_TASK, required=True), repo=fields.repo(),
        files=fields.paths("files"),
        budget_tokens=fields.integer("budget_tokens", DEFAULT_BUDGET, *BUDGET_RANGE),
        format=fields.choice("format", FORMATS, "markdown"))


def parse_impact(raw: Any, allow_local: bool = False) -> ImpactRequest:
    fields = Fields(raw, {"repo", "ref", "files", "base", "head"}, strings=False,
                    allow_local=allow_local)
    request = ImpactRequest(repo=fields.repo(), files=fields.paths("files"),
                            base=fields.commit("base"), head=fields.commit("head"))
    if request.files and (request.base or request.head):
        raise bad_request("give either files or base and head, not both")
    if not request.files and not (request.base and request.head):
        raise bad_request("give files (the changed paths) or base and head (two commits)")
    return request


def parse_node(raw: Any, allow_local: bool = False) -> NodeRequest:
    fields = Fields(raw, SNAPSHOT_FIELDS | {"path", "symbol", "depth", "kinds", "limit"},
                    strings=True, allow_local=allow_local)
    return NodeRequest(
        repo=fields.repo(), path=clean_path(fields.text("path", 1_000, required=True)),
        symbol=fields.text("symbol", 500), commit=fields.commit(),
        depth=fields.integer("depth", 1, 1, MAX_DEPTH),
        kinds=fields.edge_kinds((EdgeKind.IMPORTS.value, EdgeKind.CALLS.value,
                                 EdgeKind.EXTENDS.value)),
        limit=fields.integer("limit", MAX_RESULTS, 1, MAX_RESULTS))


def parse_path(raw: Any, allow_local: bool = False) -> PathRequest:
    fields = Fields(raw, SNAPSHOT_FIELDS | {"from", "to", "kinds", "max_depth"},
                    strings=True, allow_local=allow_local)
    return PathRequest(
        repo=fields.repo(), source=clean_path(fields.text("from", 1_000, True), "from"),
        target=clean_path(fields.text("to", 1_000, True), "to"), commit=fields.commit(),
        kinds=fields.edge_kinds((EdgeKind.IMPORTS.value,)),
        max_depth=fields.integer("max_depth", MAX_DEPTH, 1, MAX_DEPTH))


def parse_snapshot(raw: Any, allow_local: bool = False, default_limit: int = 20,
                   max_limit: int = MAX_LIMIT) -> SnapshotRequest:
    fields = Fields(raw, SNAPSHOT_FIELDS | {"limit"}, strings=True,
                    allow_local=allow_local)
    return SnapshotRequest(repo=fields.repo(), commit=fields.commit(),
                           limit=fields.integer("limit", default_limit, 1, max_limit))
