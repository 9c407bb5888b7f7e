"""Fetching a repository: for now the guard that runs right before any clone.

The API validated the URL without DNS. A public-looking name can still resolve
to a private address (or be re-pointed there after validation: DNS rebinding),
so the worker resolves the host itself and refuses unless every address is public.
"""
from __future__ import annotations

import socket
from urllib.parse import urlsplit

from shared.repo_url import is_public_address


class UnsafeTarget(Exception):
    """The repository's host resolves to an address the worker must not reach."""


def check_clone_target(repo_url: str) -> list[str]:
    """Resolve the URL's host; return its addresses if all are public, else raise."""
    parts = urlsplit(repo_url)
    if parts.scheme == "file":  # admitted only with ALLOW_LOCAL_REPOS
        return []
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeTarget(f"cannot resolve {host}: {exc}") from exc
    addresses = sorted({info[4][0] for info in infos})
    private = [a for a in addresses if not is_public_address(a)]
    if private or not addresses:
        raise UnsafeTarget(f"{host} resolves to a non-public address ({', '.join(private)}); "
                           "refusing to clone")
    return addresses
