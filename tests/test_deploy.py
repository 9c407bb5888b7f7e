"""The deployment files: render.yaml, the systemd unit, setup_edge.sh, the worker's env
template, docker-compose.yml and the Windows NSSM script.

Names are checked against what shared/settings.py really reads (recorded while it reads
them), setup_edge.sh runs for real in a scratch copy with a fake nvidia-smi, and the unit
goes through systemd-analyze (Debian package `systemd`).
"""
from __future__ import annotations

import ast
import os
import re
import shutil
import stat
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from shared.settings import Mode, Settings

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "neo-alexandria-worker.service"
SETUP = ROOT / "setup_edge.sh"
TEMPLATE = ROOT / "deploy" / "env.edge.example"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
NSSM_SCRIPT = ROOT / "deploy" / "windows" / "install-worker.ps1"

SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|DATABASE_URL|REDIS")
ENV_LINE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")
# Render's own variable (the Python it builds with), not one of ours.
# Read by Render itself, and by glibc's allocator (not by our settings).
RENDER_VARIABLES = {"PYTHON_VERSION", "MALLOC_ARENA_MAX"}
# Read by the control plane only, or drills: not the worker's template's business.
NOT_FOR_THE_WORKER = {"PHAROS_ADMIN_TOKEN", "MAX_QUEUE_SIZE", "TASK_TTL", "ALLOW_LOCAL_REPOS",
                      "HOST", "PORT", "NODE2VEC_FORCE_OOM",
                      # /mcp's Host check, and `python -m cloud mcp` against a control plane
                      "MCP_ALLOWED_HOSTS", "NEO_ALEXANDRIA_URL", "NEO_ALEXANDRIA_TOKEN",
                      "WEBHOOK_SECRET",  # webhooks reach the control plane only
                      # plans are enforced, and Stripe spoken to, by the control plane only
                      "PLANS", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_PRICE_PRO",
                      "STRIPE_PRICE_TEAM", "STRIPE_API_BASE", "PUBLIC_URL"}


class _RecordingEnv(dict):
    """An empty environment that notes every name asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, name, default=None):
        self.asked.add(name)
        return super().get(name, default)


def settings_variables() -> set[str]:
    env = _RecordingEnv()
    Settings.from_env(env)
    return env.asked


def test_settings_variables_are_recorded():
    names = settings_variables()
    assert {"MODE", "DATABASE_URL", "QDRANT_URL", "UPSTASH_REDIS_REST_TOKEN"} <= names
    assert "PYTHON_VERSION" not in names


# ---------------------------------------------------------------------------
# render.yaml
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blueprint() -> dict:
    return yaml.safe_load((ROOT / "render.yaml").read_text())


@pytest.fixture(scope="module")
def web_service(blueprint) -> dict:
    services = blueprint["services"]
    assert isinstance(services, list) and len(services) == 1
    return services[0]


def test_render_blueprint_has_the_required_shape(blueprint, web_service):
    assert set(blueprint) <= {"services", "databases", "envVarGroups", "projects", "previews"}
    assert web_service["type"] == "web"
    assert web_service["runtime"] == "python"
    assert web_service["plan"] == "free"
    assert web_service["name"]
    assert "pip install -r requirements-cloud.txt" in web_service["buildCommand"]
    assert web_service["startCommand"] == "python -m cloud"
    assert web_service["healthCheckPath"] == "/health"


def render_env(web_service) -> dict[str, dict]:
    entries = web_service["envVars"]
    keys = [entry["key"] for entry in entries]
    assert len(keys) == len(set(keys)), "a key is listed twice"
    return {entry["key"]: entry for entry in entries}


def test_render_secrets_are_entered_in_the_dashboard(web_service):
    env = render_env(web_service)
    required = {"PHAROS_ADMIN_TOKEN", "UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN",
                "DATABASE_URL", "QDRANT_URL", "QDRANT_API_KEY"}
    assert required <= set(env)
    for key, entry in env.items():
        if SECRET_NAME.search(key) or key in required:
            assert entry.get("sync") is False, f"{key} must be sync: false"
            assert set(entry) == {"key", "sync"}, f"{key} carries a value in the repository"


def test_render_commits_no_secret_values(web_service):
    for key, entry in render_env(web_service).items():
        if "value" not in entry:
            continue
        value = str(entry["value"])
        assert not SECRET_NAME.search(key), f"{key} has a committed value"
        assert "@" not in value and "://" not in value, f"{key}={value} looks like a credential"
        assert not re.fullmatch(r"[A-Za-z0-9_\-]{20,}", value), f"{key} looks like a token"


def test_render_variables_are_ones_the_settings_read(web_service):
    unknown = set(render_env(web_service)) - settings_variables() - RENDER_VARIABLES
    assert not unknown, f"render.yaml sets variables nothing reads: {sorted(unknown)}"


def test_render_values_make_a_valid_control_plane(web_service):
    env = {key: str(entry["value"]) for key, entry in render_env(web_service).items()
           if "value" in entry}
    assert env["MODE"] == "CLOUD"
    assert env["HOST"] == "0.0.0.0"  # Render routes to the port on every interface
    python = tuple(int(part) for part in env["PYTHON_VERSION"].split("."))
    assert python >= (3, 10)
    settings = Settings.from_env({**env, "PHAROS_ADMIN_TOKEN": "x" * 32})
    assert settings.mode is Mode.CLOUD


# ---------------------------------------------------------------------------
# The systemd unit
# ---------------------------------------------------------------------------


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> every value given (Environment= may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"directive outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not a directive: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT.read_text())


def one(section: dict[str, list[str]], key: str) -> str:
    values = section.get(key, [])
    assert len(values) == 1, f"{key}= should be set once, found {values}"
    return values[0]


def stop_grace_seconds() -> float:
    """build_worker's default grace, read from the source (importing it loads torch)."""
    tree = ast.parse((ROOT / "edge" / "__main__.py").read_text())
    build = next(node for node in ast.walk(tree)
                 if isinstance(node, ast.FunctionDef) and node.name == "build_worker")
    names = [arg.arg for arg in build.args.args]
    defaults = dict(zip(names[len(names) - len(build.args.defaults):], build.args.defaults))
    return float(ast.literal_eval(defaults["stop_grace_seconds"]))


def test_unit_runs_the_worker_as_a_dedicated_user(unit):
    assert one(unit["Unit"], "Description")
    assert "network-online.target" in one(unit["Unit"], "After").split()
    assert "network-online.target" in one(unit["Unit"], "Wants").split()
    service = unit["Service"]
    assert one(service, "Type") == "simple"
    assert one(service, "User") == "neo-alexandria"
    assert one(service, "Group") == "neo-alexandria"
    assert one(service, "WorkingDirectory") == "/opt/neo-alexandria"
    assert one(service, "EnvironmentFile") == "/opt/neo-alexandria/.env.edge"
    assert one(service, "ExecStart") == "/opt/neo-alexandria/.venv/bin/python -m edge worker"
    environment = dict(value.split("=", 1) for value in service["Environment"])
    assert environment["MODE"] == "EDGE"
    assert environment["DATA_DIR"] == "/var/lib/neo-alexandria"
    assert one(unit["Install"], "WantedBy") == "multi-user.target"


def test_unit_restarts_and_stops_gracefully(unit):
    service = unit["Service"]
    assert one(service, "Restart") == "always"
    assert 1 <= int(one(service, "RestartSec")) <= 30
    assert one(service, "KillSignal") == "SIGINT"
    # SIGINT to the worker alone: git and parser children must not die before it is done.
    assert one(service, "KillMode") == "mixed"
    grace = stop_grace_seconds()
    assert grace == 60
    assert grace + 10 <= int(one(service, "TimeoutStopSec")) <= grace + 30


def test_unit_is_hardened_but_keeps_the_gpu(unit):
    service = unit["Service"]
    assert one(service, "NoNewPrivileges") == "yes"
    assert one(service, "ProtectSystem") == "strict"
    assert one(service, "PrivateTmp") == "yes"
    assert one(service, "ProtectHome") == "yes"
    state = one(service, "StateDirectory")
    data_dir = dict(value.split("=", 1) for value in service["Environment"])["DATA_DIR"]
    assert data_dir == f"/var/lib/{state}"
    assert data_dir in one(service, "ReadWritePaths").split()
    # /dev/nvidia* must stay reachable, and CUDA/Triton write executable code at run time.
    assert service.get("PrivateDevices", ["no"]) == ["no"]
    assert "DevicePolicy" not in service and "DeviceAllow" not in service
    assert service.get("MemoryDenyWriteExecute", ["no"]) == ["no"]
    assert "ProcSubset" not in service


def test_unit_header_says_how_to_install_it():
    header = UNIT.read_text().split("[Unit]")[0]
    for step in ("useradd", "/etc/systemd/system", "daemon-reload", "enable --now",
                 "journalctl -u neo-alexandria-worker"):
        assert step in header


def systemd_analyze() -> str:
    binary = shutil.which("systemd-analyze")
    if binary is None:
        pytest.skip("systemd-analyze not installed (Debian package: systemd)")
    return binary


def verify(binary: str, unit_text: str, folder: Path) -> str:
    """systemd-analyze verify on a copy whose ExecStart is this interpreter (verify
    insists that the binary exists); returns what it printed (nothing when clean)."""
    folder.mkdir()
    copy = folder / UNIT.name
    copy.write_text(unit_text.replace("/opt/neo-alexandria/.venv/bin/python", sys.executable))
    result = subprocess.run([binary, "verify", "--man=no", str(copy)], capture_output=True,
                            text=True, timeout=30)
    return (result.stdout + result.stderr).strip() + ("" if result.returncode == 0
                                                       else f"\nexit {result.returncode}")


def test_unit_passes_systemd_analyze_verify(tmp_path):
    binary = systemd_analyze()
    assert verify(binary, UNIT.read_text(), tmp_path / "unit") == ""


def test_systemd_analyze_verify_reports_mistakes_here(tmp_path):
    """The clean verdict above means something: the same call flags a broken copy."""
    binary = systemd_analyze()
    broken = UNIT.read_text().replace("Restart=always", "Restartt=always")
    assert "Restartt" in verify(binary, broken, tmp_path / "broken")


# ---------------------------------------------------------------------------
# setup_edge.sh
# ---------------------------------------------------------------------------


def test_setup_script_is_executable_bash():
    assert os.access(SETUP, os.X_OK)
    subprocess.run(["bash", "-n", str(SETUP)], check=True, timeout=30)


@pytest.fixture
def sandbox(tmp_path) -> Path:
    """The files setup_edge.sh needs, in a scratch folder it may write to."""
    root = tmp_path / "repo"
    (root / "deploy").mkdir(parents=True)
    shutil.copy2(SETUP, root / SETUP.name)
    shutil.copy2(TEMPLATE, root / "deploy" / TEMPLATE.name)
    for requirements in ROOT.glob("requirements-*.txt"):
        shutil.copy2(requirements, root / requirements.name)
    return root


def fake_nvidia_smi(folder: Path, cuda: str, compute_cap: str = "8.9",
                    fail: bool = False) -> Path:
    """A stand-in for nvidia-smi: its banner with the driver's CUDA version, and the
    --query-gpu answer (no compute_cap field on old drivers: compute_cap="")."""
    script = folder / "nvidia-smi"
    if fail:
        body = ('echo "NVIDIA-SMI has failed because it couldn\'t communicate with the '
                'NVIDIA driver."\nexit 9\n')
    else:
        query = (f'echo "NVIDIA GeForce RTX Laptop GPU, {compute_cap}"' if compute_cap
                 else 'echo "Field \\"compute_cap\\" is not a valid field to query."; exit 2')
        body = f"""case "$*" in
  *--query-gpu*) {query} ;;
  *) cat <<'EOF'
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI 570.124.04             Driver Version: 570.124.04     CUDA Version: {cuda}     |
|-----------------------------------------+------------------------+----------------------+
EOF
esac
"""
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return script


def run_setup(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items()
             if key not in {"NVIDIA_SMI", "TORCH_BUILD", "PYTHON"}}
    clean.update({"PYTHON": sys.executable, "NVIDIA_SMI": str(root / "no-nvidia-smi")}, **env)
    return subprocess.run(["bash", str(root / SETUP.name), *args], capture_output=True,
                          text=True, env=clean, timeout=60)


def torch_installs(output: str) -> list[str]:
    return [line for line in output.splitlines() if "torch==" in line]


@pytest.mark.parametrize("cuda, compute_cap, build", [
    ("12.8", "8.9", "cu126"),   # newest build not above the driver
    ("12.9", "8.6", "cu129"),
    ("13.0", "8.9", "cu130"),
    ("13.2", "8.9", "cu132"),
    ("13.4", "9.0", "cu132"),   # a driver newer than every build: the newest build
    ("12.2", "8.6", "cu126"),   # CUDA minor-version compatibility within 12.x
    ("12.4", "", "cu126"),      # old driver without compute_cap in --query-gpu
    ("12.8", "12.0", "cu129"),  # Blackwell: cu126 has no kernels for it
    ("13.0", "6.1", "cu126"),   # Pascal: CUDA 13 builds dropped it
    ("11.8", "8.6", "cpu"),     # no torch 2.13 build for a CUDA 11 driver
])
def test_setup_dry_run_picks_the_torch_build_for_the_driver(sandbox, tmp_path, cuda,
                                                            compute_cap, build):
    smi = fake_nvidia_smi(tmp_path, cuda, compute_cap)
    result = run_setup(sandbox, "--dry-run", NVIDIA_SMI=str(smi))
    assert result.returncode == 0, result.stderr
    assert f"CUDA {cuda}" in result.stdout
    assert torch_installs(result.stdout) == [
        f"[dry-run] .venv/bin/python -m pip install --index-url "
        f"https://download.pytorch.org/whl/{build} torch==2.13.0+{build}"]
    assert not (sandbox / ".venv").exists(), "a dry run installed something"


def test_setup_without_nvidia_smi_takes_the_cpu_build(sandbox):
    result = run_setup(sandbox, "--dry-run")  # NVIDIA_SMI points at a missing file
    assert result.returncode == 0, result.stderr
    assert "no NVIDIA GPU" in result.stdout
    assert torch_installs(result.stdout) == [
        "[dry-run] .venv/bin/python -m pip install --index-url "
        "https://download.pytorch.org/whl/cpu torch==2.13.0+cpu"]
    assert "[dry-run] .venv/bin/python -m pip install --quiet -r requirements-edge.txt" \
        in result.stdout
    assert "-m edge check" in result.stdout


def test_setup_with_a_failing_driver_takes_the_cpu_build(sandbox, tmp_path):
    smi = fake_nvidia_smi(tmp_path, "12.8", fail=True)
    result = run_setup(sandbox, "--dry-run", NVIDIA_SMI=str(smi))
    assert result.returncode == 0, result.stderr
    assert "couldn't communicate with the NVIDIA driver" in result.stdout
    assert "whl/cpu torch==2.13.0+cpu" in result.stdout


def test_setup_cpu_option_wins_over_a_gpu(sandbox, tmp_path):
    smi = fake_nvidia_smi(tmp_path, "13.0")
    result = run_setup(sandbox, "--dry-run", "--cpu", NVIDIA_SMI=str(smi))
    assert result.returncode == 0, result.stderr
    assert "whl/cpu torch==2.13.0+cpu" in result.stdout
    assert "cu130" not in result.stdout


def test_setup_keeps_a_torch_of_the_right_build(sandbox):
    """An existing .venv with the chosen build is left alone; another build is replaced."""
    try:
        installed = version("torch")
    except PackageNotFoundError:
        pytest.skip("torch is not installed here")
    if "+" not in installed:
        pytest.skip(f"torch {installed} has no build label (macOS)")
    label = installed.split("+", 1)[1]
    python = sandbox / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)

    same = run_setup(sandbox, "--dry-run", TORCH_BUILD=label)
    assert same.returncode == 0, same.stderr
    assert f"torch {installed} is installed: nothing to do" in same.stdout
    assert torch_installs(same.stdout) == []
    assert ".venv exists" in same.stdout and "-m venv" not in same.stdout

    other = "cu130" if label == "cpu" else "cpu"
    switch = run_setup(sandbox, "--dry-run", TORCH_BUILD=other)
    assert f"replacing {installed}" in switch.stdout
    assert len(torch_installs(switch.stdout)) == 1
    assert f"torch==2.13.0+{other}" in switch.stdout


def test_setup_runs_the_check_with_the_env_file_loaded(sandbox):
    """A real (not dry) run against a stand-in venv whose pip only reports and whose
    `-m edge check` prints what it was given and fails as told."""
    python = sandbox / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"""#!/bin/sh
case "$1 $2" in
  "-m pip") echo "pip ran: $*"; exit 0 ;;
  "-m edge") echo "check got MODE=$MODE DATABASE_URL=$DATABASE_URL"; exit "$CHECK_STATUS" ;;
esac
exec "{sys.executable}" "$@"
""")
    python.chmod(0o755)
    (sandbox / ".env.edge").write_text(
        "DATABASE_URL=postgresql://u:p@db.example/x?sslmode=require&channel_binding=require\n")

    passed = run_setup(sandbox, TORCH_BUILD="cu130", CHECK_STATUS="0")
    assert passed.returncode == 0, passed.stderr
    assert "pip ran: -m pip install --index-url https://download.pytorch.org/whl/cu130 " \
        "torch==2.13.0+cu130" in passed.stdout
    assert "pip ran: -m pip install --quiet -r requirements-edge.txt" in passed.stdout
    assert ("check got MODE=EDGE DATABASE_URL=postgresql://u:p@db.example/x?sslmode=require"
            "&channel_binding=require") in passed.stdout
    assert "edge worker ready" in passed.stdout

    failed = run_setup(sandbox, TORCH_BUILD="cu130", CHECK_STATUS="1")
    assert failed.returncode == 1
    assert "the self-test failed (exit 1)" in failed.stderr
    wrong = run_setup(sandbox, TORCH_BUILD="cu130", CHECK_STATUS="2")
    assert wrong.returncode == 2
    assert "the configuration is wrong" in wrong.stderr


def test_setup_creates_the_env_file_once(sandbox):
    env_file = sandbox / ".env.edge"
    first = run_setup(sandbox, "--dry-run")
    assert first.returncode == 0, first.stderr
    assert env_file.read_text() == TEMPLATE.read_text()
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    edited = env_file.read_text() + "WORKER_ID=my-laptop\n"
    env_file.write_text(edited)

    second = run_setup(sandbox, "--dry-run")
    assert second.returncode == 0, second.stderr
    assert ".env.edge exists: left as it is" in second.stdout
    assert env_file.read_text() == edited


def test_setup_refuses_an_old_python(sandbox, tmp_path):
    old = tmp_path / "python3.9"
    old.write_text("#!/bin/sh\necho 3.9\n")
    old.chmod(0o755)
    result = run_setup(sandbox, "--dry-run", PYTHON=str(old))
    assert result.returncode != 0
    assert "3.10 or newer" in result.stderr
    missing = run_setup(sandbox, "--dry-run", PYTHON=str(tmp_path / "nowhere"))
    assert missing.returncode != 0 and "not found" in missing.stderr


def test_setup_refuses_unknown_options(sandbox):
    result = run_setup(sandbox, "--gpu")
    assert result.returncode != 0
    assert "unknown option: --gpu" in result.stderr
    assert not (sandbox / ".env.edge").exists()


def test_setup_reads_env_files_like_systemd(tmp_path):
    """No shell evaluation: a Neon URL's & and a token's $ arrive as written."""
    env_file = tmp_path / "env"
    env_file.write_bytes(
        b"# comment\n"
        b"\n"
        b"DATABASE_URL=postgresql://u:p@h.neon.tech/db?sslmode=require&channel_binding=require\r\n"
        b"QDRANT_API_KEY=ab$HOME`id`cd\n"
        b'GIT_TOKEN="quoted value"\n'
        b"  WORKER_ID= spaced  \n"
        b"export DEVICE=cpu\n"
        b"not a setting\n"
        b"EMPTY=")
    script = (f'source "{SETUP}"; load_env_file "{env_file}"; '
              'for k in DATABASE_URL QDRANT_API_KEY GIT_TOKEN WORKER_ID DEVICE EMPTY; do '
              'printf "%s=[%s]\\n" "$k" "${!k-unset}"; done')
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "DATABASE_URL=[postgresql://u:p@h.neon.tech/db?sslmode=require&channel_binding=require]",
        "QDRANT_API_KEY=[ab$HOME`id`cd]",
        "GIT_TOKEN=[quoted value]",
        "WORKER_ID=[spaced]",
        "DEVICE=[cpu]",
        "EMPTY=[]",
    ]
    assert "line 8 is not KEY=value" in result.stderr
    assert "not a setting" not in result.stderr  # a line may hold a secret: never echoed


@pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="no nvidia-smi on this machine")
def test_setup_reads_the_real_nvidia_smi(sandbox):
    result = run_setup(sandbox, "--dry-run", NVIDIA_SMI=shutil.which("nvidia-smi"))
    assert result.returncode == 0, result.stderr
    assert "driver supports CUDA" in result.stdout, result.stdout
    assert re.search(r"whl/cu1\d\d torch==2\.13\.0\+cu1\d\d", result.stdout), result.stdout


# ---------------------------------------------------------------------------
# The env template
# ---------------------------------------------------------------------------


def template_entries() -> list[tuple[bool, str, str]]:
    """(active, key, value) for every KEY=value line, commented-out examples included."""
    entries = []
    for line in TEMPLATE.read_text().splitlines():
        match = ENV_LINE.match(line)
        if match:
            entries.append((match.group(1) is None, match.group(2), match.group(3)))
    return entries


def test_env_template_names_only_settings_variables():
    names = {key for _, key, _ in template_entries()}
    unknown = names - settings_variables()
    assert not unknown, f"env.edge.example names variables nothing reads: {sorted(unknown)}"


def test_env_template_documents_every_worker_variable():
    missing = settings_variables() - NOT_FOR_THE_WORKER - {key for _, key, _ in
                                                           template_entries()}
    assert not missing, f"add these to deploy/env.edge.example: {sorted(missing)}"


def test_env_template_runs_as_a_worker_and_leaves_data_dir_to_the_unit():
    active = {key: value for is_active, key, value in template_entries() if is_active}
    assert active.get("MODE") == "EDGE"
    assert "DATA_DIR" not in active  # it would override the unit's /var/lib/neo-alexandria
    assert Settings.from_env(active).mode is Mode.EDGE
    for line in TEMPLATE.read_text().splitlines():
        assert line == "" or line.startswith("#") or ENV_LINE.match(line), line


def test_env_template_examples_are_placeholders():
    for _, key, value in template_entries():
        if key.endswith(("_TOKEN", "_KEY")):
            assert value.startswith("paste-"), f"{key}={value} should be a placeholder"
        password = urlsplit(value).password if "://" in value else None
        assert password in (None, "password"), f"{key} carries a real-looking password"


# ---------------------------------------------------------------------------
# docker-compose.yml
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def published_ports(service: dict) -> dict[int, str]:
    """host port -> host address, from "ADDRESS:HOST:CONTAINER" entries."""
    ports = {}
    for entry in service.get("ports", []):
        address, host_port, _ = str(entry).rsplit(":", 2)
        ports[int(host_port)] = address
    return ports


def test_compose_servers_are_pinned_healthchecked_and_persistent(compose):
    services = compose["services"]
    assert set(services) == {"redis", "postgres", "qdrant"}
    for name, service in services.items():
        image, _, tag = service["image"].rpartition(":")
        assert image and tag != "latest" and re.search(r"\d+\.\d+", tag), service["image"]
        assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
        for volume in service["volumes"]:
            assert volume.split(":")[0] in compose["volumes"], f"{name}: {volume} is not named"


def test_compose_binds_loopback_only(compose):
    for name, service in compose["services"].items():
        ports = published_ports(service)
        assert ports, f"{name} publishes nothing"
        assert set(ports.values()) == {"127.0.0.1"}, f"{name}: {service['ports']}"


def test_compose_comment_urls_reach_its_servers(compose):
    urls = dict(re.findall(r"^#\s+(REDIS_URL|DATABASE_URL|QDRANT_URL)=(\S+)$",
                           COMPOSE.read_text(), re.MULTILINE))
    assert set(urls) == {"REDIS_URL", "DATABASE_URL", "QDRANT_URL"}
    services = compose["services"]
    for key, service in (("REDIS_URL", "redis"), ("DATABASE_URL", "postgres"),
                         ("QDRANT_URL", "qdrant")):
        parts = urlsplit(urls[key])
        assert parts.hostname == "127.0.0.1"
        assert parts.port in published_ports(services[service]), f"{key} port"
    database = urlsplit(urls["DATABASE_URL"])
    postgres = services["postgres"]["environment"]
    assert database.username == postgres["POSTGRES_USER"]
    assert database.password == postgres["POSTGRES_PASSWORD"]
    assert database.path.lstrip("/") == postgres["POSTGRES_DB"]
    settings = Settings.from_env({"MODE": "EDGE", **urls})  # plain is fine on loopback
    assert settings.queue_backend == "redis"


# ---------------------------------------------------------------------------
# The Windows NSSM script (PowerShell cannot run here: its text is checked)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nssm_script() -> str:
    return NSSM_SCRIPT.read_text()


def nssm_settings(script: str) -> dict[str, str]:
    """`Invoke-Nssm set $ServiceName NAME VALUE...` lines, $Constants resolved."""
    constants = dict(re.findall(r"^\$(\w+) = (\S+)", script, re.MULTILINE))
    found = {}
    for name, value in re.findall(r"Invoke-Nssm set \$ServiceName (\w+) (.+)", script):
        value = value.strip()
        found[name] = found[name] + "\n" + value if name in found else value
        if value.startswith("$") and value[1:] in constants:
            found[name] = constants[value[1:]]
    return found


def test_nssm_script_sets_what_the_issue_lists(nssm_script):
    found = nssm_settings(nssm_script)
    assert "Invoke-Nssm install $ServiceName $python" in nssm_script
    assert re.search(r"\$python = Join-Path \$repo '\.venv\\Scripts\\python\.exe'", nssm_script)
    assert found["Application"] == "$python"
    assert found["AppDirectory"] == "$repo"
    assert found["AppParameters"] == "'-m edge worker'"
    assert found["AppEnvironmentExtra"] == "@pairs"
    assert re.search(r"MODE = 'EDGE'; DATA_DIR = \$DataDir", nssm_script)
    assert "Read-EnvFile $envFile" in nssm_script and "'.env.edge'" in nssm_script
    assert found["AppStdout"] == found["AppStderr"] == "$log"
    assert "Join-Path $LogDir" in nssm_script
    assert found["AppRotateFiles"] == "1"
    assert found["AppRotateOnline"] == "1"
    assert int(found["AppRotateBytes"]) == 10 * 1024 * 1024
    assert "Default Restart" in found["AppExit"].splitlines()
    assert int(found["AppRestartDelay"]) > 0
    assert found["Start"] == "SERVICE_AUTO_START"


def test_nssm_stop_gives_the_worker_as_long_as_systemd_does(nssm_script, unit):
    found = nssm_settings(nssm_script)
    assert found["AppStopMethodSkip"] == "0"  # Ctrl+C (the worker's SIGINT) comes first
    timeout_ms = int(found["AppStopMethodConsole"])
    assert timeout_ms == int(one(unit["Service"], "TimeoutStopSec")) * 1000
    assert timeout_ms >= (stop_grace_seconds() + 10) * 1000


def test_nssm_script_checks_its_ground_and_can_remove(nssm_script):
    assert re.search(r"^\[CmdletBinding\(\)\]\s*param\(", nssm_script, re.MULTILINE)
    assert "[switch]$Remove" in nssm_script
    assert "$ErrorActionPreference = 'Stop'" in nssm_script
    assert "WindowsBuiltInRole]::Administrator" in nssm_script
    assert "Get-Command 'nssm.exe'" in nssm_script
    assert "Invoke-Nssm stop $ServiceName" in nssm_script
    assert "Invoke-Nssm remove $ServiceName confirm" in nssm_script
    assert "if ($LASTEXITCODE -ne 0)" in nssm_script


def powershell_code(script: str) -> str:
    """The script without comments and string contents, for bracket counting."""
    script = re.sub(r"<#.*?#>", "", script, flags=re.DOTALL)
    out, quote, i = [], None, 0
    while i < len(script):
        char = script[i]
        if quote:
            if char == quote:
                if i + 1 < len(script) and script[i + 1] == quote:  # '' or "" inside
                    i += 1
                else:
                    quote = None
                    out.append(char)
            elif char == "`" and quote == '"':
                i += 1
        elif char in "'\"":
            quote = char
            out.append(char)
        elif char == "#":
            while i < len(script) and script[i] != "\n":
                i += 1
            continue
        else:
            out.append(char)
        i += 1
    assert quote is None, "unterminated string"
    return "".join(out)


def test_nssm_script_brackets_balance(nssm_script):
    code = powershell_code(nssm_script)
    for opening, closing in ("{}", "()", "[]"):
        assert code.count(opening) == code.count(closing), f"{opening}{closing} unbalanced"


def test_nssm_script_strings_have_no_drive_qualified_variables(nssm_script):
    """"$name: text" in a PowerShell string reads as a drive-qualified variable (an error)."""
    for string in re.findall(r'"[^"\n]*"', nssm_script):
        bad = re.findall(r"\$(?!env:|script:)\w+:", string)
        assert not bad, f"{string}: write ${{name}}: instead"
