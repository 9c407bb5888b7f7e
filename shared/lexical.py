"""Words of code and of questions about it, for the keyword index.

The worker indexes each chunk's terms with these functions and the control plane
turns a query into terms with the same ones, so both sides always agree.

An identifier yields itself whole (lowercased) and its parts: snake_case and
kebab parts, camelCase and PascalCase humps (an acronym run stays one part:
`HTTPServerError` -> http, server, error), digits apart from letters. Every word
is then stemmed (Snowball English), so a question's "parsed headers" meets the
code's `parse_header`. Words of one letter and the keywords of the indexed
languages and of English prose carry no evidence and are dropped.

`document_terms` weighs a chunk's name: the symbol's own name counts
NAME_WEIGHT times, since a question usually names what the code does and the
name is where code says it; the enclosing names and the path count once.
"""
from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

import snowballstemmer

NAME_WEIGHT = 3.0
MAX_TERMS_PER_QUERY = 64  # a longer query adds little and costs a term each

_WORD = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*|[0-9]+")
# Boundaries inside an identifier: lower->Upper, ACRONYMWord, letter<->digit.
_HUMP = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

_STOP = frozenset("""
a an and are as at be been but by can could did do does doing done for from had has have
having he her his how i if in into is it its itself just me more most my no nor not of off
on once only or other our out over own same she should so some such than that the their
them then there these they this those through to too under until up very was we were what
when where which while who whom why will with would you your also any each either else
get gets given let may must return returns see used uses using via whether
def class self cls lambda pass none true false import elif except finally raise try yield
async await global nonlocal del assert with
function const var new typeof instanceof void null undefined export default extends
implements interface enum static public private protected readonly super case switch
break continue throw catch require module exports type
""".split())

_stemmer = snowballstemmer.stemmer("english")


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _stemmer.stemWord(word)


def words(identifier: str) -> str:
    """An identifier as the plain words it is made of: `sendConfirmationEmail`,
    `send_confirmation_email` -> "send confirmation email" (nothing dropped, not stemmed)."""
    return " ".join(p.lower() for chunk in re.split(r"[^A-Za-z0-9]+", identifier)
                    for p in _HUMP.findall(chunk))


@lru_cache(maxsize=200_000)
def identifier_terms(identifier: str) -> tuple[str, ...]:
    """The terms of one identifier: itself whole and its parts, stemmed, no stop words."""
    parts = [p.lower() for chunk in identifier.replace("$", "_").split("_")
             for p in _HUMP.findall(chunk)]
    stems = [_stem(p) for p in parts if len(p) > 1 and p not in _STOP]
    whole = identifier.lower().strip("_$")
    if len(parts) > 1 and whole:  # the exact identifier, unstemmed, matches itself only
        stems.insert(0, whole)
    return tuple(stems)


def terms(text: str) -> list[str]:
    """Every term of `text` in order, repeats kept (its term frequencies)."""
    found: list[str] = []
    for word in _WORD.findall(text):
        found.extend(identifier_terms(word))
    return found


def query_terms(query: str) -> list[str]:
    """A query's distinct terms in first-seen order, at most MAX_TERMS_PER_QUERY."""
    return list(dict.fromkeys(terms(query)))[:MAX_TERMS_PER_QUERY]


def document_terms(path: str, qualname: str, code: str) -> Counter:
    """A chunk's term weights: code terms once per occurrence, name terms boosted."""
    counts: Counter = Counter(terms(code))
    outer, _, name = qualname.rpartition(".")
    for term in terms(name or path.rsplit("/", 1)[-1]):
        counts[term] += NAME_WEIGHT
    for term in terms(outer) + terms(path.rsplit(".", 1)[0]):
        counts[term] += 1.0
    return counts
