"""The query side: search, graph questions, task context and impact, over the
stored snapshots and vectors. `QueryService` is its one entry point; every face
(HTTP routes, the page, MCP tools) is a thin adapter over it."""
from cloud.query.errors import QueryError
from cloud.query.service import QueryService

__all__ = ["QueryError", "QueryService"]
