"""Import resolution: each language's resolver sees the whole repository's files."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from edge.parse.model import ParsedFile
from edge.resolve.model import FileImports


def resolve_imports(root: Path, files: Sequence[ParsedFile]) -> dict[str, FileImports]:
    python = [f for f in files if f.language == "python"]
    scripts = [f for f in files if f.language != "python"]
    resolved: dict[str, FileImports] = {}
    if python:
        from edge.resolve.python import PythonResolver
        resolver = PythonResolver(f.path for f in python)
        for file in python:
            resolved[file.path] = resolver.resolve(file)
    if scripts:
        from edge.resolve.javascript import JavaScriptResolver
        resolver = JavaScriptResolver(root, [f.path for f in scripts])
        for file in scripts:
            resolved[file.path] = resolver.resolve(file)
    return resolved
