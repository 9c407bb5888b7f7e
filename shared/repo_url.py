"""Validate and normalise a repository URL before it is queued.

Everything here is syntactic and needs no DNS.  A public-looking name may still
resolve to a private address, so the worker must call is_public_address() on
every address the host resolves to right before it clones (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import unquote

__all__ = ["InvalidRepoUrl", "normalize_repo_url", "is_public_address", "MAX_LENGTH",
           "index_key", "split_index_key", "valid_branch"]

MAX_LENGTH = 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# RFC 3986 unreserved characters, a few harmless sub-delims, or a %XX escape;
# anything else (quotes, $, ;, non-ASCII) has no business in a repository path.
_SEGMENT = re.compile(r"(?:[A-Za-z0-9._~+=,:@!-]|%[0-9A-Fa-f]{2})+")
_LOCAL_NAMES = {"localhost", "home.arpa"}
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa", ".lan", ".localdomain")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # last 32 bits are the IPv4 address
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_HINT = "https://host/owner/repo"
_LOCAL_DISABLED = "local repositories are disabled; set ALLOW_LOCAL_REPOS to allow them"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address  # type alias


class InvalidRepoUrl(ValueError):
    """The submitted repository URL is malformed or unsafe; str(e) says why, in one sentence
    a user understands."""


def index_key(url: str, branch: str | None = None) -> str:
    """Where one branch's index lives (its jobs, snapshots, vectors, parse cache and
    fence): the URL itself for the default branch, `URL#branch` for another. A
    normalised URL never holds '#' (fragments are refused), so the two cannot meet."""
    return f"{url}#{branch}" if branch else url


def valid_branch(name: str) -> bool:
    """A name git takes as a branch, never as an option or a path trick (git
    check-ref-format's rules that matter here)."""
    return (0 < len(name) <= 200 and name.isprintable() and not name.startswith(("-", "/"))
            and ".." not in name and "@{" not in name and not name.endswith(("/", ".", ".lock"))
            and not any(c in name for c in " ~^:?*[\\"))


def split_index_key(key: str) -> tuple[str, str | None]:
    """(URL, branch) of an index key; branch None for the default branch."""
    url, _, branch = key.partition("#")
    return url, branch or None


def normalize_repo_url(raw: str, *, allow_local: bool = False) -> str:
    """Return the canonical form of raw, or raise InvalidRepoUrl saying why."""
    _check_characters(raw, spaces=_is_local_path(raw))
    head = raw.split("/", 1)[0]  # "scheme:" or a bare host; never part of the path
    if "@" in head:
        if ":" in head.split("@", 1)[1]:
            raise InvalidRepoUrl(f"SSH addresses like user@host:path are not allowed; use {_HINT}")
        raise InvalidRepoUrl("credentials in the URL are not allowed")
    if raw.startswith("/"):
        return _normalize_local(raw, allow_local)
    match = _SCHEME.match(raw)
    if match is None:
        # Short form host/owner/repo: the first segment must look like a domain.
        if "." not in head or head.startswith("."):
            raise InvalidRepoUrl(f"not a repository URL; use {_HINT}")
        return _normalize_web("https", raw)
    scheme, rest = match[1].lower(), raw[match.end():]
    if scheme == "file":
        if not allow_local:
            raise InvalidRepoUrl(_LOCAL_DISABLED)
        if not rest.startswith("///"):
            raise InvalidRepoUrl("file URLs must have the form file:///absolute/path")
        return _normalize_local(rest[2:], allow_local)
    if scheme not in _DEFAULT_PORTS:
        if "." in scheme:  # "github.com:owner/repo" is git's scp-like syntax
            raise InvalidRepoUrl(f"SSH addresses like host:path are not allowed; use {_HINT}")
        raise InvalidRepoUrl(f"URL scheme '{scheme}' is not allowed; use https")
    if not rest.startswith("//"):
        raise InvalidRepoUrl(f"malformed URL; expected it to start with {scheme}://")
    return _normalize_web(scheme, rest[2:])


def is_public_address(address: str) -> bool:
    """True when an IP address string (v4 or v6, as returned by getaddrinfo) is a public,
    globally routable address.
    The worker calls this on what a host resolves to right before cloning (DNS rebinding guard)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False  # fail closed: anything we cannot read is not known to be public
    return _address_problem(ip) is None


def _is_local_path(raw: object) -> bool:
    return isinstance(raw, str) and (raw.startswith("/") or raw[:8].lower() == "file:///")


def _check_characters(raw: str, spaces: bool = False) -> None:
    """`spaces`: a local path may hold plain spaces (a folder such as "My Projects"), inside
    it, never at its end; git gets it as one argument. Other whitespace is refused."""
    if not isinstance(raw, str):
        raise InvalidRepoUrl("repository URL must be a string")
    if len(raw) > MAX_LENGTH:  # before scanning, so a huge body costs nothing
        raise InvalidRepoUrl(f"repository URL is longer than {MAX_LENGTH} characters")
    visible = raw.replace(" ", "") if spaces and not raw.endswith(" ") else raw
    problems = [
        (not raw, "repository URL is empty"),
        (not all(_is_visible(c) for c in visible),
         "repository URL contains whitespace or a control character"),
        ("\\" in raw, "backslashes are not allowed in repository URLs"),
        ("?" in raw or "#" in raw, "query strings and fragments are not allowed in repository URLs"),
        (raw.startswith("-"), "repository URL must not start with '-'"),  # git would read an option
    ]
    for failed, message in problems:
        if failed:
            raise InvalidRepoUrl(message)


def _is_visible(c: str) -> bool:
    return c.isprintable() and not c.isspace()  # isprintable() is False for Cc, Cf (U+200B), Zl, Zp


def _normalize_web(scheme: str, rest: str) -> str:
    netloc, _, path = rest.partition("/")
    if "@" in netloc:
        raise InvalidRepoUrl("credentials in the URL are not allowed")
    host, port = _split_netloc(netloc)
    host = _normalize_host(host)
    path = _normalize_path(path)
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    return f"{scheme}://{host}/{path}"


def _split_netloc(netloc: str) -> tuple[str, int | None]:
    if ":" not in netloc or netloc.endswith("]"):  # no port; ':' may belong to [IPv6]
        return netloc, None
    host, port = netloc.rsplit(":", 1)
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise InvalidRepoUrl(f"port '{port}' is not a valid port number")
    return host, int(port)


def _normalize_host(host: str) -> str:
    if host.startswith("["):
        return _normalize_ipv6(host)
    if not host.isascii():
        raise InvalidRepoUrl(f"host {host} is not ASCII; use its punycode (xn--) form")
    name = host.lower()
    name = name[:-1] if name.endswith(".") else name
    if not name:
        raise InvalidRepoUrl("URL has no host")
    if _ends_in_number(name):
        # Browsers and libc read such hosts as IPv4 (2130706433, 0x7f.1, 0177.0.0.1),
        # so we must too, or a private address slips through in disguise.
        ip = _parse_ipv4(name)
        if ip is None:
            raise InvalidRepoUrl(f"host {host} is not a valid IPv4 address")
        _require_public(ip, host)
        return str(ip)
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise InvalidRepoUrl(f"host {host} is not a valid domain name")
    if name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES):
        raise InvalidRepoUrl(f"host {name} is a local name")
    if "." not in name:  # single labels resolve through the local search domain
        raise InvalidRepoUrl(f"host {name} is not a fully qualified domain name")
    return name


def _normalize_ipv6(host: str) -> str:
    inner = host[1:-1] if host.endswith("]") else ""
    if "%" in inner:
        raise InvalidRepoUrl("IPv6 zone ids are not allowed")
    try:
        ip = ipaddress.IPv6Address(inner)
    except ValueError:
        raise InvalidRepoUrl(f"host {host} is not a valid IPv6 address") from None
    _require_public(ip, host)
    return f"[{ip.compressed}]"


def _ends_in_number(name: str) -> bool:
    last = name.split(".")[-1]
    return last != "" and ((last.isascii() and last.isdigit()) or _parse_ipv4_number(last) is not None)


def _parse_ipv4_number(part: str) -> int | None:
    """WHATWG IPv4 number: decimal, 0x-hex or leading-0 octal; None if it is none of these."""
    if not part:
        return None
    radix = 10
    if part[:2] in ("0x", "0X"):
        part, radix = part[2:], 16
    elif len(part) > 1 and part[0] == "0":
        part, radix = part[1:], 8
    if not part:
        return 0  # "0x" alone is zero
    if any(c not in "0123456789abcdef"[:radix] for c in part.lower()):
        return None
    return int(part, radix)


def _parse_ipv4(name: str) -> ipaddress.IPv4Address | None:
    """WHATWG IPv4 parser: 1-4 parts, the last one fills the remaining bytes."""
    parts = name.split(".")
    if len(parts) > 4:
        return None
    numbers = [_parse_ipv4_number(p) for p in parts]
    if any(n is None for n in numbers):
        return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    return ipaddress.IPv4Address(sum(n << 8 * (3 - i) for i, n in enumerate(head)) + last)


def _require_public(ip: IPAddress, shown: str) -> None:
    problem = _address_problem(ip)
    if problem is not None:
        label = shown if shown == str(ip) or shown.startswith("[") else f"{shown} ({ip})"
        raise InvalidRepoUrl(f"host {label} is {problem}")


def _address_problem(ip: IPAddress) -> str | None:
    """Why ip is not a public address, as 'a ... address'; None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            # These forms reach the embedded IPv4 host, so it alone decides.
            problem = _address_problem(embedded)
            return problem and f"an IPv6 form of {embedded}, {problem}"
        if ip in _NAT64_LOCAL:
            return "a local-use NAT64 address"
    checks = [
        (ip.is_loopback, "a loopback address"),
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_link_local, "a link-local address (such as the cloud metadata service)"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_reserved, "a reserved address"),
        (ip.is_private, "a private address"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT, "a shared (carrier-grade NAT) address"),
        (not ip.is_global, "not a public address"),
    ]
    return next((problem for failed, problem in checks if failed), None)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address that mapped, compatible, 6to4 and NAT64 forms route to."""
    for embedded in (ip.ipv4_mapped, ip.sixtofour):
        if embedded is not None:
            return embedded
    if (int(ip) >> 32 == 0 and int(ip) > 1) or ip in _NAT64:  # ::a.b.c.d (not :: or ::1), 64:ff9b::a.b.c.d
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _normalize_path(path: str) -> str:
    while path.endswith(("/", ".git")):
        path = path[:-1] if path.endswith("/") else path[:-4]
    if not path:
        raise InvalidRepoUrl("URL must name a repository, e.g. https://github.com/owner/repo")
    for segment in path.split("/"):
        _check_segment(segment)
    return path


def _check_segment(segment: str) -> None:
    if not segment:
        raise InvalidRepoUrl("URL path contains an empty segment ('//')")
    if not _SEGMENT.fullmatch(segment):
        raise InvalidRepoUrl(f"URL path segment {segment!r} contains characters that are not allowed")
    try:
        decoded = unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise InvalidRepoUrl(f"URL path segment {segment!r} has invalid percent-encoding") from None
    # Check the decoded form too, so %2e%2e, %2d-option and %0a cannot sneak past.
    if decoded in (".", ".."):
        raise InvalidRepoUrl("URL path must not contain '.' or '..' segments")
    if decoded.startswith("-"):
        raise InvalidRepoUrl("URL path segments must not start with '-'")
    if not all(_is_visible(c) and c not in "/\\%" for c in decoded):
        raise InvalidRepoUrl(f"URL path segment {segment!r} encodes a character that is not allowed")


def _normalize_local(path: str, allow_local: bool) -> str:
    if not allow_local:
        raise InvalidRepoUrl(_LOCAL_DISABLED)
    if not path.startswith("/"):
        raise InvalidRepoUrl("local repository paths must be absolute")
    path = path.rstrip("/")  # ".git" is kept: a bare repo directory may be named x.git
    if not path:
        raise InvalidRepoUrl("local path must name a repository directory, not /")
    for segment in path[1:].split("/"):
        if segment in ("", ".", ".."):
            raise InvalidRepoUrl("local path must not contain empty, '.' or '..' segments")
        if segment.startswith("-"):
            raise InvalidRepoUrl("local path segments must not start with '-'")
    if "%" in path:  # git may percent-decode file URLs; refuse rather than guess
        raise InvalidRepoUrl("local paths must not contain '%'")
    return "file://" + path
