"""`python -m cloud`: serve the control plane with uvicorn on HOST:PORT.
`python -m cloud mcp`: the MCP tools over stdio, for a coding agent (cloud/mcp_server/stdio.py)."""
from __future__ import annotations

import logging
import signal
import sys

import uvicorn

from cloud.app import create_app
from cloud.auth import redact_path
from shared.secrets import Scrubber, scrub_logs
from shared.settings import Settings, SettingsError


class _RedactAccessLog(logging.Filter):
    """uvicorn's access log prints request paths, and a submitted repository URL
    may carry credentials."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3:
            args = list(record.args)
            args[2] = redact_path(str(args[2]))
            record.args = tuple(args)
        return True


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("uvicorn.access").addFilter(_RedactAccessLog())
    scrub_logs(Scrubber.of_settings(settings))


def _stopped(*_) -> None:
    raise SystemExit(0)


def main(settings: Settings | None = None) -> int:
    if settings is None:
        try:
            settings = Settings.from_env()
        except SettingsError as exc:
            print(f"configuration error: {exc}", file=sys.stderr)
            return 2
    configure_logging(settings)
    for name in ("SIGINT", "SIGTERM"):
        # uvicorn drains, then raises the signal again for the app's own handler: by then
        # everything has stopped, so it is a clean exit (0), not a death by signal
        signal.signal(getattr(signal, name), _stopped)
    # drain in-flight requests for up to 30 s on SIGTERM
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                timeout_graceful_shutdown=30, log_config=None)
    return 0


def command(args: list[str]) -> int:
    if not args:
        return main()
    if args == ["mcp"]:
        from cloud.mcp_server.stdio import main as mcp_main

        return mcp_main()
    print(f"usage: python -m cloud [mcp]  (got {' '.join(args)!r})", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(command(sys.argv[1:]))
