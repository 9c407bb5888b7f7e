"""`python -m cloud mcp`: the MCP tools over stdio, for an agent on this machine.

With NEO_ALEXANDRIA_URL and NEO_ALEXANDRIA_TOKEN the tools ask that control plane
over its HTTP API; without, they answer from the stores and queue the settings name
(DATA_DIR's embedded stores by default: Qdrant's local mode admits one process, so
while `make run` serves the same DATA_DIR, point NEO_ALEXANDRIA_URL at it instead).
stdout carries the protocol: every log line goes to stderr.
"""
from __future__ import annotations

import logging
import sys

from cloud.mcp_server.backends import remote_or_local
from cloud.mcp_server.tools import build_server
from shared.secrets import Scrubber, scrub_logs
from shared.settings import Settings, SettingsError

log = logging.getLogger("cloud.mcp")


def main(settings: Settings | None = None) -> int:
    if settings is None:
        try:
            settings = Settings.from_env()
        except SettingsError as exc:
            print(f"configuration error: {exc}", file=sys.stderr)
            return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    scrub_logs(Scrubber.of_settings(settings))
    backend = remote_or_local(settings)
    log.info("MCP over stdio, answering from %s",
             f"the control plane at {settings.remote_url}" if settings.remote_url
             else f"the stores of {settings.data_dir.resolve()}")
    try:
        build_server(backend).run("stdio")
    except KeyboardInterrupt:
        pass
    finally:
        backend.close()
    return 0
