"""The control plane served for real, and the MCP SDK's own client against it, for
tests/test_mcp.py and bench/mcp_latency.py (no pytest imports here).

`ServedApp` runs create_app(...) under uvicorn on a loopback port in a thread, with
settings made for that port (the MCP transport's allowed hosts follow PORT).
`http_client` and `stdio_client` connect the SDK's `Client` over streamable HTTP
(with the admin token) or to a `python -m cloud mcp` child process.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import anyio
import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from cloud.app import create_app
from cloud.query import QueryService
from shared.queue import JobQueue
from shared.settings import Settings
from tests.servers import LiveServer, free_port

ROOT = Path(__file__).resolve().parent.parent


class ServedApp(LiveServer):
    """create_app(settings_for(port), queue, query) on a loopback port chosen first (the
    MCP endpoint's allowed hosts name it), until stop()."""

    def __init__(self, settings_for: Callable[[int], Settings], queue: JobQueue,
                 query: QueryService, timeout: float = 30.0):
        port = free_port()
        self.settings, self.queue, self.query = settings_for(port), queue, query
        super().__init__(create_app(self.settings, queue=queue, query=query))
        self.port = port
        self.start(timeout)


@contextlib.asynccontextmanager
async def http_client(url: str, token: str, mode: str = "auto") -> AsyncIterator[Client]:
    """The SDK's client on `url` (…/mcp) with the admin token; `mode` "legacy" speaks the
    handshake-era protocol (initialize, then calls), "auto" the newest both know."""
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                  timeout=httpx2.Timeout(30, read=300)) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            yield client


def stdio_client(env: dict[str, str]) -> Client:
    """`python -m cloud mcp` as a child process (its stderr: ours), with `env` added to
    the SDK's minimal default environment."""
    base = {name: os.environ[name] for name in ("HOME", "PATH", "LANG", "TMPDIR")
            if name in os.environ}
    return Client(StdioServerParameters(command=sys.executable, args=["-m", "cloud", "mcp"],
                                        env={**base, **env}, cwd=str(ROOT)))


def structured(result: Any) -> dict:
    """A tool call's structured answer; AssertionError with its text when it failed."""
    assert not result.is_error, result.content[0].text if result.content else result
    return result.structured_content


def run_async(main: Callable[..., Any], *args: Any) -> Any:
    """anyio.run(main, *args) on a thread of its own: the main thread may hold another
    event loop already (the page tests' sync Playwright keeps one for the session)."""
    found: dict[str, Any] = {}

    def run() -> None:
        try:
            found["value"] = anyio.run(main, *args)
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            found["error"] = exc
    thread = threading.Thread(target=run, name="mcp-client")
    thread.start()
    thread.join()
    if "error" in found:
        raise found["error"]
    return found["value"]
