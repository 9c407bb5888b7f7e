"""Path globs on repository-relative paths: `*` and `?` stay inside one folder,
`**` crosses folders, `[abc]`/`[!abc]` are classes. A malformed glob is an error,
not a literal: a user who typed `src/[a` meant something else."""
from __future__ import annotations

import re
from functools import lru_cache

from cloud.query.errors import bad_request

MAX_GLOB = 300


@lru_cache(maxsize=256)
def compile_glob(glob: str) -> re.Pattern:
    if not glob or len(glob) > MAX_GLOB:
        raise bad_request(f"path must be a glob of 1-{MAX_GLOB} characters")
    if "\x00" in glob:
        raise bad_request("path must not contain NUL")
    out, i = [], 0
    while i < len(glob):
        char = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            end = glob.find("]", i + 2 if glob.startswith("[!", i) else i + 1)
            if end < 0:
                raise bad_request(f"malformed glob {glob!r}: '[' at {i} is never closed")
            body = glob[i + 1:end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            if not body:
                raise bad_request(f"malformed glob {glob!r}: empty character class at {i}")
            out.append(f"[{'^' if negate else ''}{_class(body)}]")
            i = end + 1
        elif char == "]":
            raise bad_request(f"malformed glob {glob!r}: ']' at {i} closes nothing")
        else:
            out.append(re.escape(char))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _class(body: str) -> str:
    # Ranges (a-z) are kept; every other regex metacharacter is escaped.
    return "".join(c if c == "-" else re.escape(c) for c in body)


def matching(glob: str, paths: list[str]) -> list[str]:
    pattern = compile_glob(glob)
    return [p for p in paths if pattern.match(p)]
