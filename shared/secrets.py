"""One scrubber for every log line and error message: secrets never leave the process.

A `Scrubber` knows the secrets of a configuration (tokens, keys, and the passwords
inside URLs, raw and percent-decoded) and replaces each wherever it appears, longest
first (a secret may contain another), along with any `user:password@` in a URL.
`scrub_logs` puts one in front of every handler of the root logger, so a line that
a library writes (an HTTP client quoting a URL, a driver quoting its DSN) is
scrubbed too. Errors that leave a component (a failed clone, a database error) are
scrubbed where they are made, by the same class.
"""
from __future__ import annotations

import logging
import os
import re
from typing import Iterable, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

MASK = "***"
# Variables whose whole value is secret, and URLs that may carry a password.
SECRET_VARIABLES = ("UPSTASH_REDIS_REST_TOKEN", "QDRANT_API_KEY", "OPENAI_API_KEY",
                    "GIT_TOKEN", "PHAROS_ADMIN_TOKEN", "NEO_ALEXANDRIA_TOKEN", "WEBHOOK_SECRET",
                    "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "NEO4J_PASSWORD")
URL_VARIABLES = ("REDIS_URL", "DATABASE_URL", "UPSTASH_REDIS_REST_URL", "QDRANT_URL",
                 "OPENAI_BASE_URL")
_USERINFO = re.compile(r"(?<=//)[^/@\s]+@")


class Scrubber:
    def __init__(self, secrets: Iterable[str] = (), urls: Iterable[str] = ()):
        found = {secret for secret in secrets if secret}
        for url in urls:
            found.update(_url_passwords(url))
        self._secrets = sorted(found, key=len, reverse=True)

    @classmethod
    def of_environment(cls, env: Mapping[str, str] = os.environ) -> "Scrubber":
        return cls([env.get(name, "").strip() for name in SECRET_VARIABLES],
                   [env.get(name, "").strip() for name in URL_VARIABLES])

    @classmethod
    def of_settings(cls, settings) -> "Scrubber":
        """The secrets of a Settings (shared.settings), a generated admin token included."""
        return cls([settings.admin_token, settings.upstash_token, settings.qdrant_api_key,
                    settings.git_token, settings.openai_api_key, settings.remote_token,
                    settings.webhook_secret, settings.stripe_secret_key,
                    settings.stripe_webhook_secret, settings.neo4j_password],
                   [settings.redis_url, settings.database_url, settings.upstash_url,
                    settings.qdrant_url, settings.openai_base_url])

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return _USERINFO.sub(MASK + "@", text)


class _ScrubRecords(logging.Filter):
    def __init__(self, scrub: Scrubber):
        super().__init__()
        self.scrub = scrub

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.scrub(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        return True


def scrub_logs(scrub: Scrubber) -> None:
    """Scrub every record the root logger's handlers write (set them up first)."""
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, _ScrubRecords)]:
            handler.removeFilter(old)
        handler.addFilter(_ScrubRecords(scrub))


def _url_passwords(url: str) -> set[str]:
    try:
        parts = urlsplit(url)
        passwords = [parts.password or "", *parse_qs(parts.query).get("password", [])]
    except ValueError:  # not a URL: settings validation says so elsewhere
        return set()
    return {p for p in passwords + [unquote(p) for p in passwords] if p}
