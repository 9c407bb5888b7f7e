"""The fetch stage: the DNS guard with the machine's real resolver, the clone
against real repositories made with the git CLI and real servers on loopback,
and the job workspaces (properties 13 and 14)."""
from __future__ import annotations

import base64
import contextlib
import ctypes
import logging
import os
import socket
import stat
import subprocess
import threading
import time
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from edge.fetch import (Checkout, FetchError, UnsafeTarget, check_clone_target, clone, fetch,
                        remote_head, token_for)
from edge.workspace import job_workspace, remove_abandoned_workspaces, remove_tree
from edge.pipeline import IngestPipeline
from shared.jobs import Job
from shared.settings import Settings


@pytest.mark.parametrize("url", ["http://localhost/o/r", "https://127.0.0.1/o/r",
                                 "https://[::1]/o/r", "https://10.1.2.3/o/r"])
def test_hosts_resolving_to_private_addresses_are_refused(url):
    with pytest.raises(UnsafeTarget, match="non-public"):
        check_clone_target(url)


def test_public_address_passes():
    assert check_clone_target("https://8.8.8.8/o/r") == ["8.8.8.8"]


def test_unresolvable_host_is_refused_with_a_reason():
    with pytest.raises(UnsafeTarget, match="cannot resolve"):
        check_clone_target("https://no-such-host.invalid/o/r")


def test_the_pipeline_refuses_before_its_first_stage():
    job = Job(id="j", repo_url="http://localhost/o/r", submitted_at=0, ttl=60)
    stages = []
    with pytest.raises(UnsafeTarget):
        IngestPipeline(Settings())(job, lambda stage, progress: stages.append(stage))
    assert stages == ["fetch"]


# ---------------------------------------------------------------------------
# The clone: real repositories made with the git CLI, real servers on loopback
# ---------------------------------------------------------------------------

MB = 1024 * 1024
TOKEN = "ghp_Sup3rSecretTokenValue0123456789"
LFS_POINTER = ("version https://git-lfs.github.com/spec/v1\n"
               "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
               "size 12345\n")


def _quiet_env(**extra: str) -> dict[str, str]:
    """Environment for the tests' own git commands: no user config, fixed author."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com", **extra)
    return env


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=_quiet_env(), check=True,
                          capture_output=True, text=True)
    return done.stdout.strip()


def _commit_all(repo: Path, message: str) -> None:
    _git("add", "-A", cwd=repo)
    _git("commit", "-q", "-m", message, cwd=repo)


def _new_repo(path: Path, files: dict[str, str | bytes]) -> Path:
    path.mkdir(parents=True)
    _git("init", "-q", "-b", "main", cwd=path)
    for name, content in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    _commit_all(path, "first")
    return path


def _script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


@dataclass
class Source:
    path: Path
    head: str
    hook_marker: Path  # written by any hook of the source repository that runs

    @property
    def url(self) -> str:
        return self.path.as_uri()


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Source:
    """A repository with history, a tag, a second branch, an LFS pointer, a
    submodule and a hook of its own. Shared: no test changes it."""
    tmp_path = tmp_path_factory.mktemp("source")
    library = _new_repo(tmp_path / "library", {"lib.py": "x = 1\n"})
    repo = _new_repo(tmp_path / "source", {
        "pkg/__init__.py": "", "pkg/mod.py": "import os\n",
        ".gitattributes": "*.bin filter=lfs diff=lfs merge=lfs -text\n", "model.bin": LFS_POINTER,
    })
    _git("tag", "v1", cwd=repo)
    _git("-c", "protocol.file.allow=always", "submodule", "add", "-q", library.as_uri(),
         "vendor/lib", cwd=repo)
    _commit_all(repo, "vendor the library")
    _git("checkout", "-q", "-b", "other", cwd=repo)
    (repo / "only_on_other.py").write_text("")
    _commit_all(repo, "other work")
    _git("checkout", "-q", "main", cwd=repo)
    (repo / "pkg" / "mod.py").write_text("import os\nimport sys\n")
    _commit_all(repo, "third")
    marker = tmp_path / "source-hook-ran"
    for hook in ("post-checkout", "post-merge", "reference-transaction"):
        _script(repo / ".git" / "hooks" / hook, f"touch {marker}")
    return Source(repo, _git("rev-parse", "HEAD", cwd=repo), marker)


@dataclass
class HostileConfig:
    """What a user's own git setup may hold that a worker's clone must not obey."""
    markers: Path  # every hook, filter or helper that runs leaves a file here

    def ran(self) -> list[str]:
        return sorted(p.name for p in self.markers.iterdir())


@pytest.fixture
def hostile_config(tmp_path: Path, monkeypatch) -> HostileConfig:
    markers = tmp_path / "markers"
    markers.mkdir()
    hooks = tmp_path / "user-hooks"
    template = tmp_path / "user-template"
    for name in ("post-checkout", "reference-transaction"):
        _script(hooks / name, f"touch {markers}/hooksPath-{name}")
        _script(template / "hooks" / name, f"touch {markers}/template-{name}")
    smudge = _script(tmp_path / "smudge.sh", f"touch {markers}/lfs-smudge; cat >/dev/null; echo SMUDGED")
    helper = _script(tmp_path / "helper.sh",
                     f"touch {markers}/credential-helper; echo username=u; echo password=p")
    config = tmp_path / "user.gitconfig"
    config.write_text(
        f"[core]\n\thooksPath = {hooks}\n[init]\n\ttemplateDir = {template}\n"
        f"[filter \"lfs\"]\n\tsmudge = {smudge}\n\trequired = true\n"
        f"[credential]\n\thelper = {helper}\n[submodule]\n\trecurse = true\n"
    )
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_TEMPLATE_DIR", str(template))
    return HostileConfig(markers)


def _clone(url: str, dest: Path, **bounds) -> Checkout:
    bounds = {"timeout_seconds": 30, "max_bytes": 50 * MB} | bounds
    return clone(url, dest, **bounds)


def test_local_clone_is_the_source_head_at_depth_one(source, tmp_path):
    checkout = _clone(source.url, tmp_path / "out")
    out = tmp_path / "out"
    assert checkout == Checkout(path=out, commit=source.head, branch="main")
    assert (out / "pkg" / "mod.py").read_text() == "import os\nimport sys\n"
    assert _git("rev-list", "--count", "HEAD", cwd=out) == "1"
    assert _git("tag", cwd=out) == ""
    assert "other" not in _git("branch", "--all", cwd=out)


def test_a_tracked_branch_is_cloned_by_name(source, tmp_path):
    checkout = _clone(source.url, tmp_path / "out", branch="other")
    assert checkout.branch == "other"
    assert checkout.commit == _git("rev-parse", "other", cwd=source.path)
    assert (tmp_path / "out" / "only_on_other.py").exists()


@pytest.mark.parametrize("branch", ["-u", "../x", "a b", "x..y", "a:b", "a\nb", "x.lock",
                                    "@{-1}", "/abs", "x" * 201])
def test_a_branch_name_git_could_read_otherwise_is_refused(source, tmp_path, branch):
    with pytest.raises(FetchError, match="not a valid branch name"):
        _clone(source.url, tmp_path / "out", branch=branch)
    with pytest.raises(FetchError, match="not a valid branch name"):
        remote_head(source.url, Settings(allow_local_repos=True), branch)


def test_remote_head_reads_the_remote_without_cloning(source):
    allowed = Settings(allow_local_repos=True)
    assert remote_head(source.url, allowed) == source.head
    assert remote_head(source.url, allowed, "other") == _git("rev-parse", "other",
                                                              cwd=source.path)
    assert remote_head(source.url, allowed, "missing") is None
    with pytest.raises(FetchError, match="local repositories are disabled"):
        remote_head(source.url, Settings(allow_local_repos=False))


def test_remote_head_of_a_missing_repository_fails_with_gits_reason(tmp_path):
    with pytest.raises(FetchError, match="ls-remote of .* failed"):
        remote_head((tmp_path / "nothing").as_uri(), Settings(allow_local_repos=True))


def test_a_plain_path_is_cloned_shallow_too(source, tmp_path):
    # git copies the whole object store for a path; the clone must not.
    checkout = _clone(str(source.path), tmp_path / "out")
    assert checkout.commit == source.head
    assert _git("rev-list", "--count", "HEAD", cwd=tmp_path / "out") == "1"


def test_user_hooks_filters_and_submodules_stay_inert(source, hostile_config, tmp_path):
    # Control: the same environment makes a plain git clone obey the user's setup.
    subprocess.run(["git", "clone", "-q", source.url, str(tmp_path / "plain")], check=True,
                   capture_output=True)
    assert (tmp_path / "plain" / "model.bin").read_text() == "SMUDGED\n"
    assert hostile_config.ran()
    for marker in hostile_config.markers.iterdir():
        marker.unlink()

    out = tmp_path / "out"
    _clone(source.url, out)
    assert hostile_config.ran() == []
    assert not source.hook_marker.exists()
    assert (out / "model.bin").read_text() == LFS_POINTER
    assert list((out / ".git" / "hooks").glob("*")) == []
    assert list((out / "vendor" / "lib").iterdir()) == []  # the gitlink, not its content
    assert not (out / ".git" / "modules").exists()


def test_git_variables_of_a_calling_hook_cannot_redirect_the_clone(source, tmp_path,
                                                                   monkeypatch):
    outer = _new_repo(tmp_path / "outer", {"a": "a"})
    index = (outer / ".git" / "index").read_bytes()
    monkeypatch.setenv("GIT_INDEX_FILE", str(outer / ".git" / "index"))
    monkeypatch.setenv("GIT_DIR", str(outer / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(outer))
    checkout = _clone(source.url, tmp_path / "out")
    assert checkout.commit == source.head
    assert (tmp_path / "out" / ".git" / "index").exists()
    assert (outer / ".git" / "index").read_bytes() == index


def test_a_missing_repository_fails_with_gits_reason(tmp_path):
    with pytest.raises(FetchError, match=r"failed: fatal: .*does not appear to be a git repository"):
        _clone((tmp_path / "nowhere").as_uri(), tmp_path / "out")


def test_an_empty_repository_is_refused(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    _git("init", "-q", cwd=empty)
    with pytest.raises(FetchError, match="empty repository"):
        _clone(empty.as_uri(), tmp_path / "out")


@pytest.fixture(scope="module")
def big_source(tmp_path_factory) -> Path:
    return _new_repo(tmp_path_factory.mktemp("big") / "big",
                     {"small.py": "", "blob.bin": os.urandom(6 * MB)})


def test_size_cap_stops_the_clone_and_the_workspace_removes_it(big_source):
    with pytest.raises(FetchError, match="size cap of 1 MB"):
        with job_workspace() as workspace:
            _clone(big_source.as_uri(), workspace / "repo", max_bytes=1 * MB)
    assert not workspace.exists()


def test_fetch_applies_the_settings(big_source, tmp_path):
    allowed = Settings(allow_local_repos=True, max_repo_mb=1)
    with pytest.raises(FetchError, match="size cap of 1 MB"):
        fetch(big_source.as_uri(), tmp_path / "capped", allowed)
    roomy = replace(allowed, max_repo_mb=64)
    checkout = fetch(big_source.as_uri(), tmp_path / "roomy", roomy)
    assert checkout.commit == _git("rev-parse", "HEAD", cwd=big_source)


def test_fetch_refuses_local_repositories_unless_allowed(source, tmp_path):
    for url in (source.url, str(source.path)):
        with pytest.raises(FetchError, match="ALLOW_LOCAL_REPOS"):
            fetch(url, tmp_path / "out", Settings())
    assert not (tmp_path / "out").exists()


# --- servers on loopback ----------------------------------------------------

@pytest.fixture
def silent_server():
    """Completes TCP handshakes (the kernel's backlog) and never says a word."""
    server = socket.create_server(("127.0.0.1", 0), backlog=16)
    yield f"http://127.0.0.1:{server.getsockname()[1]}/owner/repo.git"
    server.close()


def _command_lines() -> list[str]:
    """Every process's argv, which any user of the machine can read."""
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            lines.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue  # the process ended
    return lines


def test_a_server_that_never_answers_times_out(silent_server, tmp_path):
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out after 1 s"):
        _clone(silent_server, tmp_path / "out", timeout_seconds=1)
    assert 1 <= time.monotonic() - started < 4
    if Path("/proc/self/cmdline").exists():  # git's helpers went with it
        deadline = time.monotonic() + 2
        while any(silent_server in line for line in _command_lines()):
            assert time.monotonic() < deadline, "a git process outlived the timeout"
            time.sleep(0.05)


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads argv from /proc")
def test_the_token_is_never_in_any_process_arguments(silent_server, tmp_path):
    errors: list[Exception] = []

    def run() -> None:
        try:
            _clone(silent_server, tmp_path / "out", timeout_seconds=2, token=TOKEN)
        except FetchError as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    seen: list[str] = []
    while worker.is_alive():
        seen += [line for line in _command_lines() if silent_server in line]
        time.sleep(0.02)
    worker.join()
    assert any(line.startswith("git clone") for line in seen)  # it looked at the clone
    assert any("remote-http" in line for line in seen)  # and at git's HTTP helper
    secrets = (TOKEN, base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode())
    assert not [line for line in seen if any(s in line for s in secrets)]
    assert len(errors) == 1 and TOKEN not in str(errors[0])


class _GitHttpServer(ThreadingHTTPServer):
    """`git http-backend`, behind Basic auth when given a password, or a redirect to
    `redirect_to` for every request; records each request (path, Authorization)."""

    daemon_threads = True

    def __init__(self, project_root: Path, password: str | None = None, host: str = "127.0.0.1",
                 port: int = 0, redirect_to: str = "", status: int = 301):
        super().__init__((host, port), _GitCgiHandler)
        self.project_root, self.password = project_root, password
        self.redirect_to, self.status = redirect_to, status
        self.requests: list[str] = []
        self.authorizations: list[str | None] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, name: str, host: str = "") -> str:
        return f"http://{host or self.server_address[0]}:{self.server_port}/{name}"

    def accepts(self, header: str | None) -> bool:
        if self.password is None:
            return True
        if not header or not header.startswith("Basic "):
            return False
        _, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return password == self.password

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _GitCgiHandler(BaseHTTPRequestHandler):
    server: _GitHttpServer

    def do_GET(self) -> None:
        header = self.headers.get("Authorization")
        self.server.requests.append(self.path)
        self.server.authorizations.append(header)
        if self.server.redirect_to:
            self.send_response(self.server.status)
            self.send_header("Location", self.server.redirect_to + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if not self.server.accepts(header):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status, headers, payload = self._run_backend()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_GET

    def _run_backend(self) -> tuple[int, list[tuple[str, str]], bytes]:
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = _quiet_env(GIT_PROJECT_ROOT=str(self.server.project_root), GIT_HTTP_EXPORT_ALL="1",
                         PATH_INFO=path, QUERY_STRING=query, REQUEST_METHOD=self.command,
                         CONTENT_TYPE=self.headers.get("Content-Type", ""),
                         CONTENT_LENGTH=str(len(body)), REMOTE_ADDR="127.0.0.1",
                         HTTP_CONTENT_ENCODING=self.headers.get("Content-Encoding", ""),
                         GIT_PROTOCOL=self.headers.get("Git-Protocol", ""))
        output = subprocess.run(["git", "http-backend"], input=body, env=env,
                                capture_output=True, check=True).stdout
        head, _, payload = output.partition(b"\r\n\r\n")
        headers = [tuple(line.split(": ", 1)) for line in head.decode().split("\r\n") if line]
        status = [int(v.split()[0]) for n, v in headers if n.lower() == "status"] or [200]
        return status[0], [(n, v) for n, v in headers if n.lower() != "status"], payload

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def private_server(source: Source):
    server = _GitHttpServer(source.path.parent, password=TOKEN)
    yield server
    server.close()


def test_the_token_travels_as_an_auth_header_and_is_kept_nowhere(source, private_server,
                                                                 tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "out"
    checkout = clone(private_server.url("source"), out, timeout_seconds=30, max_bytes=50 * MB,
                     token=TOKEN)
    assert checkout.commit == source.head
    assert any(private_server.accepts(h) for h in private_server.authorizations)
    assert "cloning" in caplog.text and TOKEN not in caplog.text
    stored = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    assert TOKEN.encode() not in stored
    assert base64.b64encode(f"x-access-token:{TOKEN}".encode()) not in stored


def test_a_rejected_token_fails_fast_without_revealing_it(private_server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = TOKEN[::-1]
    started = time.monotonic()
    with pytest.raises(FetchError, match="refused GIT_TOKEN") as failure:
        clone(private_server.url("source"), tmp_path / "out", timeout_seconds=30,
              max_bytes=50 * MB, token=wrong)
    assert time.monotonic() - started < 10
    assert private_server.authorizations and not any(
        private_server.accepts(h) for h in private_server.authorizations)
    assert wrong not in str(failure.value) and wrong not in caplog.text


def test_without_a_token_git_neither_prompts_nor_asks_a_helper(private_server, hostile_config,
                                                               tmp_path):
    with pytest.raises(FetchError, match="asks for credentials: the repository is private"):
        clone(private_server.url("source"), tmp_path / "out", timeout_seconds=30,
              max_bytes=50 * MB)
    assert hostile_config.ran() == []
    assert private_server.authorizations and set(private_server.authorizations) == {None}


def test_fetch_keeps_the_token_off_plain_http(private_server, admit, tmp_path):
    admit("127.0.0.1")
    with pytest.raises(FetchError):
        fetch(private_server.url("source"), tmp_path / "out", Settings(git_token=TOKEN))
    assert set(private_server.authorizations) == {None}


def test_the_token_goes_only_to_https_hosts_it_is_meant_for():
    settings = Settings(git_token=TOKEN, git_token_hosts=("github.com", "git.example.org"))
    assert token_for("https://github.com/o/r", settings) == TOKEN
    assert token_for("https://git.example.org/o/r", settings) == TOKEN
    assert token_for("https://evil.example.com/o/r", settings) == ""
    assert token_for("https://github.com.evil.example/o/r", settings) == ""
    assert token_for("http://github.com/o/r", settings) == ""
    assert Settings.from_env({"GIT_TOKEN_HOSTS": "GitLab.com, github.com"}).git_token_hosts == (
        "gitlab.com", "github.com")


def test_a_token_that_could_inject_headers_is_refused_unechoed(tmp_path):
    with pytest.raises(FetchError, match="GIT_TOKEN") as failure:
        _clone("https://example.com/o/r", tmp_path / "out", token="abc\r\nX-Evil: 1")
    assert "abc" not in str(failure.value)


def test_credentials_in_a_url_are_refused_unechoed(tmp_path):
    with pytest.raises(FetchError, match="credentials in the URL") as failure:
        _clone("http://user:hunter2@127.0.0.1:9/o/r", tmp_path / "out")
    assert "hunter2" not in str(failure.value) and "***@127.0.0.1" in str(failure.value)
    assert not (tmp_path / "out").exists()  # git never ran


# ---------------------------------------------------------------------------
# Clone target safety: redirects, DNS answers that change, the machine's git setup.
# Loopback stands for the public internet: `admit` makes the addresses a test names
# public to the worker's guard, and every other one stays private as in production.
# ---------------------------------------------------------------------------

@pytest.fixture
def admit(monkeypatch):
    """admit(*addresses): the guard takes these (and only these) for public ones."""
    import edge.fetch

    def admit(*addresses: str) -> None:
        monkeypatch.setattr(edge.fetch, "is_public_address", lambda a: a in addresses)
    return admit


@pytest.fixture
def open_server(source: Source):
    server = _GitHttpServer(source.path.parent)
    yield server
    server.close()


@pytest.mark.parametrize("status", [301, 302, 307])
def test_a_redirect_to_a_private_address_is_never_followed(source, open_server, admit,
                                                           tmp_path, status):
    public = _GitHttpServer(source.path.parent, redirect_to=open_server.url("").rstrip("/"),
                            status=status)
    try:
        admit("127.0.0.1")  # the redirecting host is "public"; 127.0.0.1 still is too, so
        # the redirect target differs by port only: the guard would pass it, git must not go
        with pytest.raises(FetchError, match="redirect"):
            fetch(public.url("source"), tmp_path / "out", Settings())
        assert public.requests and open_server.requests == []
    finally:
        public.close()


def test_a_redirect_is_refused_with_a_reason_even_to_a_public_host(source, open_server, admit,
                                                                   tmp_path):
    """Every redirect is refused, so no hop is ever resolved unchecked; the user is told
    to submit the repository's current address."""
    public = _GitHttpServer(source.path.parent, redirect_to=open_server.url("").rstrip("/"))
    try:
        admit("127.0.0.1")
        with pytest.raises(FetchError) as failure:
            fetch(public.url("source"), tmp_path / "out", Settings())
        assert "redirects are not followed" in str(failure.value)
        assert "current URL" in str(failure.value)
    finally:
        public.close()


@pytest.fixture
def rebinding(source: Source, monkeypatch):
    """`localhost` resolves to 127.0.0.2 for the worker's check (a public server holding
    the repository) and to 127.0.0.1 for anyone who asks again (a private server on the
    same port): a DNS answer that changed between the check and the clone."""
    checked = _GitHttpServer(source.path.parent, host="127.0.0.2")
    try:
        private = _GitHttpServer(source.path.parent, port=checked.server_port)
    except OSError:
        checked.close()
        pytest.skip("port taken on 127.0.0.1")  # pragma: no cover - a busy machine only
    real = socket.getaddrinfo

    def first_answer(host, port, *args, **kwargs):
        if host == "localhost":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port))]
        return real(host, port, *args, **kwargs)
    monkeypatch.setattr(socket, "getaddrinfo", first_answer)
    yield checked, private
    checked.close()
    private.close()


def test_git_connects_only_to_the_addresses_the_guard_checked(source, rebinding, admit,
                                                              tmp_path):
    checked, private = rebinding
    admit("127.0.0.2")
    assert socket.gethostbyname("localhost") != "127.0.0.2"  # what git's own lookup finds
    checkout = fetch(checked.url("source", host="localhost"), tmp_path / "out", Settings())
    assert checkout.commit == source.head
    assert checked.requests and private.requests == []


def test_the_machines_git_config_and_proxies_cannot_re_point_the_clone(source, open_server,
                                                                       admit, tmp_path,
                                                                       monkeypatch):
    decoy = _new_repo(tmp_path / "decoy" / "source", {"decoy.py": "x = 2\n"})
    elsewhere = _GitHttpServer(decoy.parent)
    try:
        hostile = tmp_path / "hostile.gitconfig"
        hostile.write_text(f'[url "{elsewhere.url("")}"]\n\tinsteadOf = {open_server.url("")}\n'
                           f"[http]\n\tproxy = {elsewhere.url('')}\n")
        home = tmp_path / "home"
        home.mkdir()
        (home / ".gitconfig").write_text(hostile.read_text())
        monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(hostile))
        monkeypatch.setenv("GIT_CONFIG_SYSTEM", str(hostile))
        monkeypatch.setenv("HOME", str(home))
        for proxy in ("http_proxy", "HTTP_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(proxy, elsewhere.url(""))
        admit("127.0.0.1")
        checkout = fetch(open_server.url("source"), tmp_path / "out", Settings())
        assert checkout.commit == source.head
        assert open_server.requests and elsewhere.requests == []
    finally:
        elsewhere.close()


def test_the_file_transport_is_off_unless_local_repositories_are_allowed(source, tmp_path):
    with pytest.raises(FetchError, match="transport 'file' not allowed"):
        _clone(source.url, tmp_path / "out", allow_local=False)
    assert _clone(source.url, tmp_path / "ok", allow_local=True).commit == source.head


def test_a_git_too_old_to_pin_addresses_is_refused(monkeypatch, admit, tmp_path):
    import edge.fetch
    monkeypatch.setattr(edge.fetch, "_git_version", lambda: (2, 36))
    admit("127.0.0.1")
    with pytest.raises(FetchError, match="git >= 2.37"):
        fetch("http://localhost:9/o/r", tmp_path / "out", Settings())


# ---------------------------------------------------------------------------
# Workspaces: properties 13 and 14
# ---------------------------------------------------------------------------

_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER = 1, 2, 3


@contextlib.contextmanager
def _owner_permissions_only():
    """As root, drop this thread's power to ignore file modes for the duration,
    so read-only files bind as they do for a normal user. Yields whether they bind."""
    if os.geteuid() != 0:
        yield True
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
        data = (ctypes.c_uint32 * 6)()  # two of {effective, permitted, inheritable}
        if libc.capget(header, data) != 0:
            raise OSError(ctypes.get_errno(), "capget")
    except (OSError, AttributeError):
        yield False
        return
    saved = data[0]
    data[0] &= ~((1 << _CAP_DAC_OVERRIDE) | (1 << _CAP_DAC_READ_SEARCH) | (1 << _CAP_FOWNER))
    dropped = libc.capset(header, data) == 0
    try:
        yield dropped
    finally:
        data[0] = saved
        libc.capset(header, data)


def _lock_down(root: Path, outside: Path) -> None:
    """Read-only files and directories, one unlistable, as git and stray tools leave them."""
    (root / "objects" / "pack").mkdir(parents=True)
    (root / "objects" / "pack" / "pack-1.pack").write_bytes(b"PACK")
    (root / "secret").mkdir()
    (root / "secret" / "inside").write_text("x")
    (root / "objects" / "link-out").symlink_to(outside)  # in a read-only directory
    for path in (root / "objects" / "pack" / "pack-1.pack", root / "objects" / "pack",
                 root / "objects"):
        path.chmod(0o444 if path.is_file() else 0o555)
    (root / "secret").chmod(0)


def test_read_only_contents_are_removed(tmp_path):
    root, outside = tmp_path / "tree", tmp_path / "outside.txt"
    root.mkdir()
    outside.write_text("keep")
    outside.chmod(0o444)
    with _owner_permissions_only() as binding:
        _lock_down(root, outside)
        if binding:  # control: a plain unlink is refused, so the retry is what removes it
            with pytest.raises(PermissionError):
                (root / "objects" / "pack" / "pack-1.pack").unlink()
        remove_tree(root)
    assert not root.exists()
    assert outside.read_text() == "keep" and stat.S_IMODE(outside.stat().st_mode) == 0o444


def test_a_real_clone_in_a_workspace_is_removed_with_its_read_only_packs(source):
    with _owner_permissions_only():
        with job_workspace() as workspace:
            _clone(source.url, workspace / "repo")
            packs = list((workspace / "repo" / ".git" / "objects" / "pack").glob("*.pack"))
            assert packs and all(not p.stat().st_mode & stat.S_IWUSR for p in packs)
    assert not workspace.exists()


class InjectedFailure(Exception):
    pass


_entries = st.lists(st.tuples(st.lists(st.sampled_from("abc"), min_size=1, max_size=3),
                              st.sampled_from(["file", "dir"]),
                              st.sampled_from([0o644, 0o444, 0o755, 0o555, 0o311, 0o111, 0o000])),
                    max_size=8)
_endings = st.sampled_from([None, InjectedFailure, KeyboardInterrupt, SystemExit, OSError])


@settings(max_examples=100)
@given(entries=_entries, ending=_endings)
def test_property_14_every_workspace_is_removed_however_the_job_ends(entries, ending):
    with _owner_permissions_only():
        try:
            with job_workspace() as workspace:
                _fill(workspace, entries)
                if ending is not None:
                    raise ending("job failed")
        except BaseException as exc:  # noqa: BLE001 - every kind of ending is the point
            assert ending is not None and type(exc) is ending
    assert not workspace.exists()


def _fill(root: Path, entries) -> None:
    made = []
    for parts, kind, mode in entries:
        path = root.joinpath(*parts)
        if path.exists() or any(a.is_file() for a in path.parents if root in a.parents):
            continue  # taken, or a file sits where a parent directory would go
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir() if kind == "dir" else path.write_text("x")
        made.append((path, mode))
    for path, mode in sorted(made, key=lambda item: -len(item[0].parts)):
        path.chmod(mode)  # deepest first, so no directory closes before its contents


@settings(max_examples=100)
@given(jobs=st.integers(min_value=2, max_value=8))
def test_property_13_concurrent_jobs_get_distinct_workspaces(jobs):
    barrier = threading.Barrier(jobs)
    held: dict[int, Path] = {}
    mixups: list[int] = []

    def job(number: int) -> None:
        with job_workspace() as workspace:
            held[number] = workspace
            (workspace / "owner").write_text(str(number))
            barrier.wait(timeout=10)  # every job holds its workspace at once
            if (workspace / "owner").read_text() != str(number):
                mixups.append(number)

    threads = [threading.Thread(target=job, args=(n,)) for n in range(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(held) == jobs and len(set(held.values())) == jobs
    assert mixups == []
    assert not any(path.exists() for path in held.values())


def test_workspaces_of_abandoned_pipelines_are_removed_at_exit():
    entered = threading.Event()
    release = threading.Event()
    held = []

    def pipeline():  # a job thread still inside its workspace when the worker exits
        with job_workspace() as path:
            held.append(path)
            (path / "objects").mkdir()
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=pipeline, daemon=True)
    thread.start()
    assert entered.wait(5)
    assert remove_abandoned_workspaces() == held
    assert not held[0].exists()
    release.set()
    thread.join(5)
    assert remove_abandoned_workspaces() == []
