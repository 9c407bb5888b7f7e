"""Settings: read once from the environment, validated, immutable.

Every variable is listed in README.md with its default. A wrong value raises
SettingsError naming the variable, so a service fails at start, not mid-job.
"""
from __future__ import annotations

import enum
import ipaddress
import os
import re
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, TypeVar
from urllib.parse import parse_qs, urlsplit

from shared.plans import DEFAULT_PLANS, FREE, load_plans


# Directories a repository walk never enters (SKIP_DIRS replaces the list).
DEFAULT_SKIP_DIRS = (
    ".git", "node_modules", "venv", ".venv", "dist", "build", "__pycache__", ".tox",
    "site-packages", "vendor",  # vendor/: third-party copies (jquery, select2), not the project
)


E = TypeVar("E", bound=enum.Enum)
# An MCP_ALLOWED_HOSTS entry: a name, IPv4 address or [IPv6] address, then :port or :*.
_HOST_PORT = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
                        r"(?::(?:[0-9]{1,5}|\*))?")


class SettingsError(ValueError):
    """A configuration variable is missing or wrong; the message names it."""


class Mode(str, enum.Enum):
    CLOUD = "CLOUD"  # control plane only (free-tier host)
    EDGE = "EDGE"  # worker only (GPU laptop)
    ALL = "ALL"  # both on one machine, embedded defaults


class Device(str, enum.Enum):
    AUTO = "AUTO"  # CUDA when torch sees a GPU, else the CPU
    CPU = "CPU"
    CUDA = "CUDA"

    @property
    def torch_name(self) -> str | None:
        return None if self is Device.AUTO else self.value.lower()


class TextRuntime(str, enum.Enum):
    """What runs the local text model (edge/embed/runtimes.py)."""
    AUTO = "AUTO"
    TORCH = "TORCH"
    TORCH_BF16 = "TORCH-BF16"
    ONNX = "ONNX"
    ONNX_INT8 = "ONNX-INT8"


class Provider(str, enum.Enum):
    """Where text embeddings come from."""
    LOCAL = "LOCAL"  # all-MiniLM-L6-v2 on this machine's device
    OPENAI = "OPENAI"  # an OpenAI-compatible /embeddings API


@dataclass(frozen=True)
class Settings:
    mode: Mode = Mode.ALL
    admin_token: str = field(default="", repr=False)
    upstash_url: str = ""
    upstash_token: str = field(default="", repr=False)
    redis_url: str = field(default="", repr=False)  # may embed a password
    database_url: str = field(default="", repr=False)
    qdrant_url: str = ""
    qdrant_api_key: str = field(default="", repr=False)
    data_dir: Path = Path("data")
    max_queue_size: int = 10
    task_ttl: int = 86_400
    allow_local_repos: bool = False
    max_attempts: int = 3
    lease_seconds: int = 60
    heartbeat_seconds: float = 5.0
    idle_poll_seconds: float = 60.0
    worker_id: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    # The edge pipeline: clone bounds, private-repo token, what a walk skips.
    clone_timeout: int = 300
    max_repo_mb: int = 1024
    git_token: str = field(default="", repr=False)
    git_token_hosts: tuple[str, ...] = ("github.com",)
    skip_dirs: tuple[str, ...] = DEFAULT_SKIP_DIRS
    max_file_bytes: int = 2_000_000
    # Embeddings: the device both models train/run on, Node2Vec's knobs, the text provider.
    device: Device = Device.AUTO
    node2vec_epochs: int = 10
    node2vec_p: float = 1.0
    node2vec_q: float = 1.0
    node2vec_force_oom: bool = False  # exercise the out-of-memory fallback (tests, drills)
    embeddings_provider: Provider = Provider.LOCAL
    text_runtime: TextRuntime = TextRuntime.AUTO
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: str = field(default="", repr=False)
    openai_embedding_model: str = "text-embedding-3-small"
    embed_concurrency: int = 4
    # Repositories over time: the webhook secret of repositories registered without their
    # own, when an untouched repository is archived, snapshots kept per repository.
    webhook_secret: str = field(default="", repr=False)
    archive_after_days: int = 30
    snapshots_kept: int = 5
    # MCP: the Host headers /mcp answers (empty: this machine's names on PORT), and the
    # control plane `python -m cloud mcp` asks over HTTP instead of the local stores.
    mcp_allowed_hosts: tuple[str, ...] = ()
    remote_url: str = ""
    remote_token: str = field(default="", repr=False)
    # Accounts and billing: plans (JSON overriding shared/plans.py's defaults), Stripe
    # (all unset: billing off), and where Checkout and the Portal send the browser back.
    plans_json: str = ""
    stripe_secret_key: str = field(default="", repr=False)
    stripe_webhook_secret: str = field(default="", repr=False)
    stripe_prices: tuple[tuple[str, str], ...] = ()  # (plan, Stripe price id)
    stripe_api_base: str = ""  # the SDK's API base ("" = Stripe's); tests point it here
    public_url: str = ""
    # Graph facts mirrored in Neo4j (shared/graph/mirror.py); unset: none
    neo4j_uri: str = ""
    neo4j_user: str = ""
    neo4j_password: str = field(default="", repr=False)
    neo4j_database: str = ""

    @property
    def billing(self) -> bool:
        return bool(self.stripe_secret_key)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        reader = _Reader(env)
        mode = reader.choice("MODE", Mode, Mode.ALL)
        settings = cls(
            mode=mode,
            admin_token=reader.text("PHAROS_ADMIN_TOKEN"),
            upstash_url=reader.text("UPSTASH_REDIS_REST_URL").rstrip("/"),
            upstash_token=reader.text("UPSTASH_REDIS_REST_TOKEN"),
            redis_url=reader.text("REDIS_URL"),
            database_url=reader.text("DATABASE_URL"),
            qdrant_url=reader.text("QDRANT_URL"),
            qdrant_api_key=reader.text("QDRANT_API_KEY"),
            data_dir=Path(reader.text("DATA_DIR") or "data"),
            max_queue_size=reader.integer("MAX_QUEUE_SIZE", 10, minimum=1),
            task_ttl=reader.integer("TASK_TTL", 86_400, minimum=1),
            allow_local_repos=reader.boolean("ALLOW_LOCAL_REPOS", False),
            max_attempts=reader.integer("MAX_ATTEMPTS", 3, minimum=1),
            lease_seconds=reader.integer("LEASE_SECONDS", 60, minimum=2),
            heartbeat_seconds=reader.number("HEARTBEAT_SECONDS", 5.0, minimum=0.1),
            idle_poll_seconds=reader.number("IDLE_POLL_SECONDS", 60.0, minimum=0.1),
            worker_id=reader.text("WORKER_ID"),
            host=reader.text("HOST") or "127.0.0.1",
            port=reader.integer("PORT", 8000, minimum=1),
            clone_timeout=reader.integer("CLONE_TIMEOUT", 300, minimum=1),
            max_repo_mb=reader.integer("MAX_REPO_MB", 1024, minimum=1),
            git_token=reader.text("GIT_TOKEN"),
            git_token_hosts=tuple(h.lower() for h in reader.names("GIT_TOKEN_HOSTS",
                                                                  ("github.com",))),
            skip_dirs=reader.names("SKIP_DIRS", DEFAULT_SKIP_DIRS),
            max_file_bytes=reader.integer("MAX_FILE_BYTES", 2_000_000, minimum=1),
            device=reader.choice("DEVICE", Device, Device.AUTO),
            node2vec_epochs=reader.integer("NODE2VEC_EPOCHS", 10, minimum=1),
            node2vec_p=reader.number("NODE2VEC_P", 1.0, minimum=1e-6),
            node2vec_q=reader.number("NODE2VEC_Q", 1.0, minimum=1e-6),
            node2vec_force_oom=reader.boolean("NODE2VEC_FORCE_OOM", False),
            embeddings_provider=reader.choice("EMBEDDINGS_PROVIDER", Provider, Provider.LOCAL),
            text_runtime=reader.choice("TEXT_RUNTIME", TextRuntime, TextRuntime.AUTO),
            openai_base_url=(reader.text("OPENAI_BASE_URL")
                             or "https://api.openai.com/v1").rstrip("/"),
            openai_api_key=reader.text("OPENAI_API_KEY"),
            openai_embedding_model=(reader.text("OPENAI_EMBEDDING_MODEL")
                                    or "text-embedding-3-small"),
            embed_concurrency=reader.integer("EMBED_CONCURRENCY", 4, minimum=1),
            webhook_secret=reader.text("WEBHOOK_SECRET"),
            archive_after_days=reader.integer("ARCHIVE_AFTER_DAYS", 30, minimum=1),
            snapshots_kept=reader.integer("SNAPSHOTS_KEPT", 5, minimum=1),
            mcp_allowed_hosts=reader.names("MCP_ALLOWED_HOSTS", ()),
            remote_url=reader.text("NEO_ALEXANDRIA_URL").rstrip("/"),
            remote_token=reader.text("NEO_ALEXANDRIA_TOKEN"),
            plans_json=reader.text("PLANS"),
            stripe_secret_key=reader.text("STRIPE_SECRET_KEY"),
            stripe_webhook_secret=reader.text("STRIPE_WEBHOOK_SECRET"),
            stripe_prices=_stripe_prices(reader, reader.text("PLANS")),
            stripe_api_base=reader.text("STRIPE_API_BASE").rstrip("/"),
            public_url=reader.text("PUBLIC_URL").rstrip("/"),
            neo4j_uri=reader.text("NEO4J_URI"),
            neo4j_user=reader.text("NEO4J_USER"),
            neo4j_password=reader.text("NEO4J_PASSWORD"),
            neo4j_database=reader.text("NEO4J_DATABASE"),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if bool(self.upstash_url) != bool(self.upstash_token):
            raise SettingsError(
                "UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN must be set together"
            )
        if self.upstash_url and self.redis_url:
            raise SettingsError("set either UPSTASH_REDIS_REST_URL or REDIS_URL, not both")
        if self.upstash_url:
            _require_tls("UPSTASH_REDIS_REST_URL", self.upstash_url, {"https"}, {"http"})
        if self.redis_url:
            _require_tls("REDIS_URL", self.redis_url, {"rediss"}, {"redis", "unix"})
        if self.database_url:
            _require_postgres_tls(self.database_url)
        if self.qdrant_url:
            _require_tls("QDRANT_URL", self.qdrant_url, {"https"}, {"http"})
        if self.embeddings_provider is Provider.OPENAI:
            if not self.openai_api_key:
                raise SettingsError("EMBEDDINGS_PROVIDER=OPENAI needs OPENAI_API_KEY")
            _require_tls("OPENAI_BASE_URL", self.openai_base_url, {"https"}, {"http"})
        for host in self.mcp_allowed_hosts:
            if host != "*" and not _HOST_PORT.fullmatch(host):
                raise SettingsError(f"MCP_ALLOWED_HOSTS: {host!r} is not host[:port] or "
                                    "host:* (no scheme, no path)")
        try:
            load_plans(self.plans_json)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        if self.stripe_secret_key and not self.stripe_webhook_secret:
            raise SettingsError("STRIPE_SECRET_KEY needs STRIPE_WEBHOOK_SECRET (the signing "
                                "secret of the endpoint /api/v1/billing/stripe-webhook)")
        if self.neo4j_uri:
            _require_tls("NEO4J_URI", self.neo4j_uri, {"neo4j+s", "bolt+s"}, {"neo4j", "bolt"})
            if not self.neo4j_user or not self.neo4j_password:
                raise SettingsError("NEO4J_URI needs NEO4J_USER and NEO4J_PASSWORD")
        if self.stripe_api_base:
            _require_tls("STRIPE_API_BASE", self.stripe_api_base, {"https"}, {"http"})
        if self.remote_url:
            _require_tls("NEO_ALEXANDRIA_URL", self.remote_url, {"https"}, {"http"})
            if not self.remote_token:
                raise SettingsError("NEO_ALEXANDRIA_URL needs NEO_ALEXANDRIA_TOKEN (the control "
                                    "plane's PHAROS_ADMIN_TOKEN)")
        if self.lease_seconds <= self.heartbeat_seconds * 2:
            raise SettingsError(
                "LEASE_SECONDS must be more than twice HEARTBEAT_SECONDS, "
                "or a slow heartbeat would let a live job's lease expire"
            )
        if self.mode is Mode.CLOUD and not self.admin_token:
            raise SettingsError(
                "PHAROS_ADMIN_TOKEN is not set: MODE=CLOUD refuses to start without it "
                "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )

    def with_generated_token(self) -> "Settings":
        """The embedded run makes up a token when none is set (and prints it)."""
        if self.admin_token:
            return self
        return replace(self, admin_token=secrets.token_urlsafe(32))

    @property
    def queue_backend(self) -> str:
        if self.upstash_url:
            return "upstash"
        if self.redis_url:
            return "redis"
        return "sqlite"


def price_variable(plan: str) -> str:
    """The setting that holds a plan's Stripe price id: STRIPE_PRICE_PRO, STRIPE_PRICE_TEAM_PLUS."""
    return "STRIPE_PRICE_" + plan.upper().replace("-", "_")


def _stripe_prices(reader: _Reader, plans_json: str) -> tuple[tuple[str, str], ...]:
    """(plan, price id) for every paid plan, the defaults and those PLANS adds, that has
    a price set."""
    try:
        names = load_plans(plans_json)
    except ValueError:  # validate() says what is wrong with PLANS
        names = DEFAULT_PLANS
    return tuple((plan, reader.text(price_variable(plan))) for plan in names
                 if plan != FREE and reader.text(price_variable(plan)))


class _Reader:
    """Typed access to the environment; errors name the variable."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env

    def text(self, name: str) -> str:
        return self.env.get(name, "").strip()

    def integer(self, name: str, default: int, *, minimum: int) -> int:
        return self._number(name, default, int, "an integer", minimum)

    def number(self, name: str, default: float, *, minimum: float) -> float:
        return self._number(name, default, float, "a number", minimum)

    def _number(self, name, default, convert, kind: str, minimum):
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = convert(raw)
        except ValueError:
            raise SettingsError(f"{name} must be {kind}, got {raw!r}") from None
        if not value >= minimum:  # also refuses NaN
            raise SettingsError(f"{name} must be at least {minimum}, got {raw}")
        return value

    def names(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        raw = self.text(name)
        if not raw:
            return default
        return tuple(part.strip() for part in raw.split(",") if part.strip())

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name).lower()
        if not raw:
            return default
        if raw in {"1", "true", "yes", "on"}:
            return True
        if raw in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{name} must be true or false, got {raw!r}")

    def choice(self, name: str, enum_type: type[E], default: E) -> E:
        raw = self.text(name).upper()
        if not raw:
            return default
        try:
            return enum_type(raw)
        except ValueError:
            allowed = " | ".join(m.value for m in enum_type)
            raise SettingsError(f"{name} must be one of {allowed}, got {raw!r}") from None


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _require_tls(name: str, url: str, secure: set[str], plain: set[str]) -> None:
    """Property 12: a service off this machine is reached over TLS only."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in secure:
        return
    if scheme not in plain:
        allowed = ", ".join(sorted(secure | plain))
        raise SettingsError(f"{name} must be a URL with scheme {allowed}")
    if scheme != "unix" and not is_loopback_host(parts.hostname):
        raise SettingsError(
            f"{name} points at {parts.hostname} without TLS; use {sorted(secure)[0]}:// "
            "for any host that is not this machine"
        )


def _require_postgres_tls(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise SettingsError("DATABASE_URL must be a postgresql:// URL")
    if is_loopback_host(parts.hostname) or not parts.hostname:
        return
    sslmode = parse_qs(parts.query).get("sslmode", [""])[0]
    if sslmode not in {"require", "verify-ca", "verify-full"}:
        raise SettingsError(
            f"DATABASE_URL points at {parts.hostname} without TLS; add ?sslmode=require"
        )
