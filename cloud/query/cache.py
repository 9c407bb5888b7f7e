"""Answers cached per repository, dropped when a new snapshot of it lands.

Every question first resolves its repository's newest ready snapshot (one
indexed read). When that changes, the repository's whole cache is dropped at
once, so answers never outlive the snapshot that made them and no memory is held
for old ones. Callers put the snapshot that answers (the newest, or an older
`commit=`) in the key.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

MAX_ENTRIES = 256  # per repository; each answer is small (results are capped)


class AnswerCache:
    def __init__(self, max_entries: int = MAX_ENTRIES):
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._snapshot: dict[str, int] = {}
        self._answers: dict[str, OrderedDict] = {}

    def get_or_make(self, repo: str, latest: int, key: Hashable,
                    make: Callable[[], Any]) -> Any:
        """The cached answer for `key`, else `make()` cached; `latest` is the id of
        the repository's newest ready snapshot."""
        with self._lock:
            answers = self._answers_of(repo, latest)
            if key in answers:
                answers.move_to_end(key)
                return answers[key]
        value = make()  # outside the lock: two threads may both make it, both are right
        with self._lock:
            answers = self._answers_of(repo, latest)
            answers[key] = value
            while len(answers) > self.max_entries:
                answers.popitem(last=False)
        return value

    def drop(self, repo: str) -> None:
        with self._lock:
            self._snapshot.pop(repo, None)
            self._answers.pop(repo, None)

    def _answers_of(self, repo: str, latest: int) -> OrderedDict:
        if self._snapshot.get(repo) != latest:  # a new snapshot landed
            self._snapshot[repo] = latest
            self._answers[repo] = OrderedDict()
        return self._answers[repo]
