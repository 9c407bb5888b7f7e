"""Searches of Qdrant's local mode, answered from a numpy copy of one repository's points.

Local mode (the embedded default) checks a search's payload filter point by point in
Python, about 20 µs a point: a filtered search over 10,000 chunks took 200-400 ms,
where the query side wants 30. A `RepoPoints` holds one repository's points of one
collection as a unit-vector matrix with the fields searches filter on, read once with
a scroll; a search is then a matrix product and a mask. The owner (VectorStore) drops
a repository's copies whenever it writes or deletes that repository's points, and in
local mode it is the only writer (the folder is locked to one client).

Scores are cosine similarities, as Qdrant's: stored vectors are already unit length
(Qdrant normalises them for a cosine collection), the query is normalised here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

FILTER_FIELDS = ("commit", "kind", "file_path")
SCROLL_PAGE = 2_000


@dataclass
class RepoPoints:
    ids: np.ndarray  # int64 [n]
    vectors: np.ndarray  # float32 [n, dim], unit rows
    # FILTER_FIELDS -> (the field's distinct values, int32 [n] index of each point's value):
    # masks are then integer comparisons, not string ones.
    fields: dict[str, tuple[dict[Any, int], np.ndarray]]
    _row: dict[int, int] | None = None  # id -> row, made on first use

    @classmethod
    def read(cls, scroll: Callable[..., Any], repo_filter: Any) -> "RepoPoints":
        """All points of the filter, through `scroll(offset=...)` pages."""
        ids: list[int] = []
        rows: list[list[float]] = []
        fields: dict[str, list] = {name: [] for name in FILTER_FIELDS}
        offset = None
        while True:
            points, offset = scroll(scroll_filter=repo_filter, limit=SCROLL_PAGE, offset=offset,
                                    with_vectors=True, with_payload=list(FILTER_FIELDS))
            for point in points:
                ids.append(int(point.id))
                rows.append(point.vector)
                payload = point.payload or {}
                for name in FILTER_FIELDS:
                    fields[name].append(payload.get(name))
            if offset is None:
                break
        matrix = np.asarray(rows, dtype=np.float32) if rows else np.zeros((0, 0), np.float32)
        return cls(np.asarray(ids, dtype=np.int64), matrix,
                   {name: _codes(values) for name, values in fields.items()})

    def nearest(self, query: np.ndarray, limit: int, where: dict | None,
                exclude: int | None = None) -> list[tuple[int, float]]:
        """(id, cosine) of the `limit` nearest points that match `where`, best first."""
        if not len(self.ids):
            return []
        mask = np.ones(len(self.ids), dtype=bool)
        for name, wanted in (where or {}).items():
            if name not in self.fields:
                raise KeyError(f"local searches filter on {FILTER_FIELDS}, not {name!r}")
            known, codes = self.fields[name]
            values = wanted if isinstance(wanted, (list, tuple)) else [wanted]
            mask &= np.isin(codes, [known[v] for v in values if v in known])
        if exclude is not None:
            mask &= self.ids != exclude
        if not mask.any():
            return []
        unit = query / max(float(np.linalg.norm(query)), 1e-12)
        scores = np.where(mask, self.vectors @ unit, -np.inf)  # one pass, no row copies
        count = min(limit, int(mask.sum()))
        top = np.argpartition(-scores, count - 1)[:count]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.ids[i]), float(scores[i])) for i in top]

    def vector_of(self, point_id: int) -> np.ndarray | None:
        if self._row is None:
            self._row = {int(i): n for n, i in enumerate(self.ids)}
        row = self._row.get(point_id)
        return self.vectors[row] if row is not None else None


def _codes(values: list) -> tuple[dict[Any, int], np.ndarray]:
    known: dict[Any, int] = {}
    codes = np.fromiter((known.setdefault(v, len(known)) for v in values), dtype=np.int32,
                        count=len(values))
    return known, codes
