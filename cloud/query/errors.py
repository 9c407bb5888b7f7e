"""The query layer's one error type; cloud/errors.py turns it into a response."""
from __future__ import annotations


class QueryError(Exception):
    """A question that cannot be answered as asked: `status` is the HTTP status the
    API answers with (400 bad input, 404 unknown repository, 503 missing model or
    unreachable store), `code` a short machine-readable name, the message the detail."""

    def __init__(self, status: int, code: str, detail: str):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def bad_request(detail: str) -> QueryError:
    return QueryError(400, "bad_request", detail)


def not_found(detail: str) -> QueryError:
    return QueryError(404, "not_found", detail)


def unavailable(code: str, detail: str) -> QueryError:
    return QueryError(503, code, detail)
