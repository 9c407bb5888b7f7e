"""Fetching a repository: the DNS guard and the clone.

The API validated the URL without DNS. A public-looking name can still resolve
to a private address, so the worker resolves the host itself and refuses unless
every address is public; then git connects to exactly those addresses (curl's
resolve list: a DNS answer that changes between the check and git's own lookup
cannot re-point the clone), follows no redirect (a public host cannot send the
clone to 169.254.169.254 or loopback) and reads no git configuration but the
worker's own (no `insteadOf`, proxy or credential helper of the machine's user).
`fetch` does all of it; the pipeline clones into a job's workspace (edge/workspace.py).
"""
from __future__ import annotations

import base64
import contextlib
import functools
import ipaddress
import logging
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import git

from shared.repo_url import is_public_address, valid_branch
from shared.secrets import Scrubber
from shared.settings import Settings

_log = logging.getLogger(__name__)


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


# ---------------------------------------------------------------------------
# The clone itself: shallow, bounded in time and size, inert (no hooks,
# filters, submodules, prompts), the token out of argv and out of messages.
# ---------------------------------------------------------------------------

class FetchError(Exception):
    """A clone failed; the message is safe to show (no credentials) and says why."""


@dataclass(frozen=True)
class Checkout:
    path: Path
    commit: str  # sha of the commit the working tree holds
    branch: str | None  # None when the remote's HEAD is detached


# The watcher's pace: often enough that a fast download overshoots the cap by
# little, and never more than about a third of a core spent walking the tree.
_POLL_SECONDS = 0.1
_TOKEN_USER = "x-access-token"  # GitHub's name for it; GitLab and Gitea take any user
# Inherited GIT_* variables are dropped: GIT_INDEX_FILE or GIT_WORK_TREE from a
# calling hook would make the clone write into the caller's repository, and
# GIT_TRACE_CURL would print the auth header. These few only choose git's own files or CAs.
_INHERITED_GIT_VARIABLES = frozenset({"GIT_EXEC_PATH", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH"})
# libcurl reads these itself: a proxy would resolve the host anew, past the pin.
_PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy"})


def fetch(repo_url: str, dest: Path | str, settings: Settings,
          branch: str | None = None) -> Checkout:
    """Check where the repository lives, then clone it (its default branch, or `branch`)
    under the configured bounds.

    Raises UnsafeTarget for a host that resolves to a non-public address."""
    local = _is_local(repo_url)
    if local and not settings.allow_local_repos:
        raise FetchError("local repositories are disabled; set ALLOW_LOCAL_REPOS to allow them")
    pinned = [] if local else check_clone_target(repo_url)
    return clone(repo_url, dest, timeout_seconds=settings.clone_timeout,
                 max_bytes=settings.max_repo_mb * 1024 * 1024,
                 token=token_for(repo_url, settings), pinned=pinned, allow_local=local,
                 branch=branch)


def remote_head(repo_url: str, settings: Settings, branch: str | None = None) -> str | None:
    """The commit the remote's `branch` (default: its HEAD) points at, asked with `git
    ls-remote` under the clone's guards (checked host, inert config, token header);
    None when the remote has no such branch. A few hundred bytes: the periodic sync's
    cheap look before it queues anything."""
    local = _is_local(repo_url)
    if local and not settings.allow_local_repos:
        raise FetchError("local repositories are disabled; set ALLOW_LOCAL_REPOS to allow them")
    pinned = [] if local else check_clone_target(repo_url)
    url, token = _git_url(repo_url), token_for(repo_url, settings)
    scrub = _scrubber(token)
    _check_token(token)
    ref = f"refs/heads/{_checked_branch(branch)}" if branch else "HEAD"
    with tempfile.TemporaryDirectory(prefix="na-git-empty-") as empty:
        config = _inert_config(empty, local) + _pin_config(url, pinned) + _auth_config(url, token)
        try:
            done = subprocess.run(["git", "ls-remote", "--", url, ref], capture_output=True,
                                  text=True, timeout=settings.clone_timeout,
                                  env=_git_environment(config, home=empty), cwd=empty)
        except subprocess.TimeoutExpired:
            raise FetchError(f"ls-remote of {scrub(url)} timed out after "
                             f"{settings.clone_timeout:g} s") from None
    if done.returncode != 0:
        raise FetchError(f"ls-remote of {scrub(url)} failed: "
                         f"{scrub(_explain(done.stderr.strip()[-500:], bool(token)))}")
    for line in done.stdout.splitlines():
        sha, _, name = line.partition("\t")
        if name == ref:
            return sha
    return None


def _checked_branch(branch: str) -> str:
    """A branch name git reads as a name, never as an option or a path trick."""
    if not valid_branch(branch):
        raise FetchError(f"{branch[:200]!r} is not a valid branch name")
    return branch


def token_for(repo_url: str, settings: Settings) -> str:
    """GIT_TOKEN, for https URLs on GIT_TOKEN_HOSTS only: plain http would show it to
    whoever is on the path, and any submitter could name their own host to collect it."""
    parts = urlsplit(repo_url)
    if parts.scheme == "https" and (parts.hostname or "") in settings.git_token_hosts:
        return settings.git_token
    return ""


def clone(repo_url: str, dest: Path | str, *, timeout_seconds: float, max_bytes: int,
          token: str = "", pinned: list[str] | None = None,
          allow_local: bool = True, branch: str | None = None) -> Checkout:
    """Shallow-clone the default branch of repo_url (or `branch`) into dest (absent or empty).

    `pinned`: the addresses check_clone_target found for the URL's host, the only
    ones git may connect to. `allow_local`: whether file:// transport is on.
    Kills git and raises FetchError when it runs past timeout_seconds or dest
    grows past max_bytes; what it left in dest is the caller's to remove.
    """
    dest = Path(dest)
    url = _git_url(repo_url)
    scrub = _scrubber(token)
    shown = scrub(url)
    if "@" in urlsplit(url).netloc:  # git would show them to every user, in its argv
        raise FetchError(f"{shown}: credentials in the URL are not allowed; set GIT_TOKEN instead")
    _check_token(token)
    _log.info("cloning %s", shown)
    with tempfile.TemporaryDirectory(prefix="na-git-empty-") as empty:
        argv = ["git", "clone", "--quiet", "--depth", "1", "--single-branch", "--no-tags",
                "--no-recurse-submodules", f"--template={empty}"]
        if branch:
            argv += ["--branch", _checked_branch(branch)]
        argv += ["--", url, str(dest)]
        config = (_inert_config(empty, allow_local) + _pin_config(url, pinned or [])
                  + _auth_config(url, token))
        env = _git_environment(config, home=empty)
        problem = _run_bounded(argv, env, dest, timeout_seconds, max_bytes)
    if problem:
        raise FetchError(f"clone of {shown} {scrub(_explain(problem, bool(token)))}")
    checkout = _checkout_of(dest, shown)
    _log.info("cloned %s at %s", shown, checkout.commit)
    return checkout


def _is_local(repo_url: str) -> bool:
    return urlsplit(repo_url).scheme == "file" or _is_path(repo_url)


def _is_path(repo_url: str) -> bool:
    return len(urlsplit(repo_url).scheme) <= 1  # none, or a Windows drive letter


def _git_url(repo_url: str) -> str:
    # git ignores --depth for a plain path (it copies the object store); a
    # file:// URL goes through the transport and honours it.
    return Path(repo_url).resolve().as_uri() if _is_path(repo_url) else repo_url


def _check_token(token: str) -> None:
    if token and not all(c.isprintable() and not c.isspace() for c in token):
        # A newline would let the token inject HTTP headers; never echo it.
        raise FetchError("GIT_TOKEN contains whitespace or control characters")


def _inert_config(empty_dir: str, allow_local: bool) -> list[tuple[str, str]]:
    """The clone's whole configuration (the user's and system's files are not read)."""
    return _system_tls_config() + [
        ("core.hooksPath", empty_dir),
        ("core.fsmonitor", "false"),
        ("credential.helper", ""),  # empty resets any helper (and its GUI prompt)
        ("filter.lfs.smudge", ""),  # an empty driver is no driver
        ("filter.lfs.process", ""),
        ("filter.lfs.clean", ""),
        ("filter.lfs.required", "false"),
        ("submodule.recurse", "false"),
        ("protocol.allow", "never"),
        ("protocol.https.allow", "always"),
        ("protocol.http.allow", "always"),
        ("protocol.file.allow", "always" if allow_local else "never"),
        ("protocol.ext.allow", "never"),
        ("http.followRedirects", "false"),  # only the checked host is ever asked
        ("http.proxy", ""),
        ("transfer.bundleURI", "false"),  # a server could point the client at any URL
        ("advice.detachedHead", "false"),
    ]


@functools.cache
def _system_tls_config() -> list[tuple[str, str]]:
    """The system file's TLS choices, the only ones kept: Git for Windows names its
    CA bundle and TLS backend there, and without them it could not verify any host."""
    try:
        done = subprocess.run(["git", "config", "--system", "--get-regexp",
                               r"^http\.ssl(cainfo|backend)$"], capture_output=True,
                              text=True, timeout=10, env={**os.environ, "GIT_CONFIG_NOSYSTEM": ""})
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [tuple(line.split(" ", 1)) for line in done.stdout.splitlines() if " " in line]


# http.curloptResolve arrived in git 2.37; an older git would ignore it silently.
_PIN_SINCE = (2, 37)


def _pin_config(url: str, addresses: list[str]) -> list[tuple[str, str]]:
    """curl's resolve list for the URL's host: git connects to the checked addresses only."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not addresses or _is_address(parts.hostname):
        return []
    version = _git_version()
    if version < _PIN_SINCE:
        raise FetchError(f"git {'.'.join(map(str, version))} cannot pin the checked addresses "
                         f"(http.curloptResolve needs git >= 2.37): upgrade git")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    listed = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
    return [("http.curloptResolve", f"{parts.hostname}:{port}:{listed}")]


def _is_address(host: str | None) -> bool:
    try:
        ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return True


@functools.cache
def _git_version() -> tuple[int, ...]:
    try:
        words = subprocess.run(["git", "version"], capture_output=True, text=True,
                               timeout=10).stdout.split()
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FetchError(f"cannot run git ({exc}); is git installed?") from None
    found = re.match(r"(\d+)\.(\d+)", words[2] if len(words) > 2 else "")
    return tuple(int(n) for n in found.groups()) if found else (0, 0)


def _auth_config(url: str, token: str) -> list[tuple[str, str]]:
    """The token as a header git sends only to this URL's scheme, host and port."""
    if not token:
        return []
    parts = urlsplit(url)
    credentials = base64.b64encode(f"{_TOKEN_USER}:{token}".encode()).decode()
    host = parts.netloc.rpartition("@")[2]
    return [(f"http.{parts.scheme}://{host}/.extraHeader", f"Authorization: Basic {credentials}")]


def _git_environment(config: list[tuple[str, str]], home: str) -> dict[str, str]:
    """git's environment: `config` and nothing of the user's or the system's git setup.

    Config travels in GIT_CONFIG_KEY_n/VALUE_n: unlike -c, it is not in argv, which
    every user of the machine can read. HOME is an empty folder: no ~/.netrc for curl."""
    env = {k: v for k, v in os.environ.items()
           if (not k.startswith("GIT_") or k in _INHERITED_GIT_VARIABLES)
           and k.lower() not in _PROXY_VARIABLES}
    env.pop("SSH_ASKPASS", None)
    env.update(GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="", GIT_LFS_SKIP_SMUDGE="1",
               GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, HOME=home,
               XDG_CONFIG_HOME=home, LC_ALL="C", LANGUAGE="C",
               GIT_CONFIG_COUNT=str(len(config)))
    for index, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def _run_bounded(argv: list[str], env: dict[str, str], dest: Path, timeout_seconds: float,
                 max_bytes: int) -> str:
    """Run git, watching the clock and dest's size; return what went wrong, or "".

    Not gitpython's runner: it always starts from os.environ, so an inherited
    GIT_INDEX_FILE would survive, and it cannot stop on size.
    """
    try:
        process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   **_own_process_group())
    except OSError as exc:
        raise FetchError(f"cannot run git ({exc.strerror}); is git installed?") from None
    deadline = time.monotonic() + timeout_seconds
    too_big = f"grew past the size cap of {max_bytes / 2**20:g} MB"
    pause = _POLL_SECONDS
    while True:
        try:
            _, stderr = process.communicate(timeout=pause)
            break
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() >= deadline:
            return _stop(process, f"timed out after {timeout_seconds:g} s")
        started = time.monotonic()
        if _tree_bytes(dest) > max_bytes:
            return _stop(process, too_big)
        pause = max(_POLL_SECONDS, 2 * (time.monotonic() - started))
    if process.returncode != 0:
        return f"failed: {_gist(stderr)}"
    return too_big if _tree_bytes(dest) > max_bytes else ""  # it may finish between polls


def _own_process_group() -> dict:
    # git's helpers (remote-https, index-pack) must die with it.
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def _stop(process: subprocess.Popen, why: str) -> str:
    if os.name == "nt":
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)], capture_output=True)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    return why


def _tree_bytes(root: Path) -> int:
    """Bytes under root, symlinks not followed; entries git renames mid-walk are skipped."""
    total, pending = 0, [root]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue
        for entry in entries:
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                else:
                    total += entry.stat(follow_symlinks=False).st_size
    return total


def _gist(stderr: bytes, limit: int = 400) -> str:
    """git's own words for the failure: its fatal/error lines, else its last lines."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    key = [line for line in lines if line.startswith(("fatal:", "error:", "remote:"))]
    text = "; ".join(key or lines[-3:]) or "git gave no reason"
    return text if len(text) <= limit else text[: limit - 1] + "…"


_REDIRECT = re.compile(r"returned error: (30[1278])\b")


def _explain(problem: str, with_token: bool) -> str:
    redirect = _REDIRECT.search(problem)
    if redirect:
        return (f"failed: the server answered with a redirect (HTTP {redirect[1]}); redirects "
                "are not followed, so a clone cannot be sent to a host nobody checked: "
                "submit the repository's current URL")
    # With prompts off, git reports a 401 as a username it could not read.
    if not any(sign in problem for sign in ("terminal prompts disabled", "Authentication failed")):
        return problem
    if with_token:
        return "failed: the server refused GIT_TOKEN (authentication failed)"
    return ("failed: the server asks for credentials: the repository is private or does "
            "not exist (set GIT_TOKEN for private repositories)")


def _scrubber(token: str) -> Scrubber:
    """Removes the token (raw and as its header) and any URL credentials from text."""
    header = base64.b64encode(f"{_TOKEN_USER}:{token}".encode()).decode()
    return Scrubber([token, header] if token else [])


def _checkout_of(dest: Path, shown: str) -> Checkout:
    repo = git.Repo(dest)
    try:
        head = repo.head
        if not head.is_valid():
            raise FetchError(f"{shown} is an empty repository (no commits)")
        branch = None if head.is_detached else head.reference.name
        return Checkout(path=dest, commit=head.commit.hexsha, branch=branch)
    finally:
        repo.close()
