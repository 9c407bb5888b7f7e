"""The one secret scrubber: log lines (from any library, tracebacks included), errors and
reprs never carry a token, a key or a password of the configuration."""
from __future__ import annotations

import io
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from shared.secrets import Scrubber, scrub_logs
from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = Settings(admin_token="admin-Tok3n-value", upstash_token="upstash-T0ken",
                    redis_url="rediss://default:p%40ss%2Fword@cache.example.com:6379",
                    database_url="postgresql://neo:pg-Secr3t@db.example.com/neo?sslmode=require",
                    qdrant_api_key="qdrant-K3y", git_token="ghp_G1tToken",
                    openai_api_key="sk-0penai")
SECRETS = ["admin-Tok3n-value", "upstash-T0ken", "p@ss/word", "p%40ss%2Fword", "pg-Secr3t",
           "qdrant-K3y", "ghp_G1tToken", "sk-0penai"]


def test_every_secret_of_the_settings_is_masked_longest_first():
    scrub = Scrubber.of_settings(SETTINGS)
    text = " | ".join(SECRETS + ["https://someone:hunter2@github.com/o/r"])
    cleaned = scrub(text)
    assert not [s for s in SECRETS + ["hunter2"] if s in cleaned]
    assert cleaned.count("***") == len(SECRETS) + 1 and "https://***@github.com/o/r" in cleaned


def test_no_secret_in_the_settings_repr():
    shown = repr(SETTINGS)
    assert not [s for s in SECRETS if s in shown]


@pytest.fixture
def root_log():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


def test_log_lines_of_any_logger_and_their_tracebacks_are_scrubbed(root_log):
    scrub_logs(Scrubber.of_settings(SETTINGS))
    try:
        raise RuntimeError(f"connect to {SETTINGS.database_url} failed")
    except RuntimeError:
        logging.getLogger("psycopg.pool").exception("pool error: %s", SETTINGS.redis_url)
    logging.getLogger("httpx").warning("POST with key %s", SETTINGS.qdrant_api_key)
    written = root_log.getvalue()
    assert "pool error" in written and "RuntimeError" in written and "POST with key ***" in written
    assert not [s for s in SECRETS if s in written]


def test_the_control_plane_logs_its_generated_token_nowhere(tmp_path):
    """The all-in-one run prints the generated token once, on purpose, to the terminal;
    its log lines (which go to files and hosts' log services) mask it."""
    script = (
        "import logging\n"
        "from cloud.__main__ import configure_logging\n"
        "from shared.settings import Settings\n"
        "settings = Settings(data_dir=__import__('pathlib').Path(r'%s')).with_generated_token()\n"
        "configure_logging(settings)\n"
        "logging.getLogger('anything').warning('token is %%s', settings.admin_token)\n"
        "print(settings.admin_token)\n" % tmp_path)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert len(token) >= 20 and token not in done.stderr and "token is ***" in done.stderr
