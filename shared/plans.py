"""Plans: what an account may use, read from configuration.

The defaults below hold unless the `PLANS` setting (a JSON object) overrides a
plan's limits or adds a plan. A limit of None is unlimited. Prices are not
here: billing maps its own price ids to these plan names.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace

FREE = "free"  # the plan of an account that pays nothing

# The metered limits, by the names shared.limits counts them under.
LIMIT_FIELDS = {
    "ingests": "ingests_per_day",
    "queries": "queries_per_minute",
    "embeddings": "embeddings_per_month",
}


@dataclass(frozen=True)
class Plan:
    name: str
    repositories: int | None  # repositories indexed at once
    ingests_per_day: int | None  # ingest and sync jobs submitted per UTC day
    queries_per_minute: int | None  # searches (API and MCP) per minute
    embeddings_per_month: int | None  # chunks embedded per UTC calendar month

    def public(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def maximum(self, limit: str) -> int | None:
        """The maximum for a metered limit named as shared.limits names it."""
        if limit not in LIMIT_FIELDS:
            raise ValueError(f"unknown limit {limit!r}; known: {', '.join(LIMIT_FIELDS)}")
        return getattr(self, LIMIT_FIELDS[limit])


_LIMITS = tuple(f.name for f in fields(Plan) if f.name != "name")

# Chunks embedded are the cost that matters: each one is worker time (MiniLM on a
# CPU embeds a few hundred a second) and a stored vector (~1.5 KB at 384 dimensions).
# A medium repository is some 5,000-20,000 chunks, and a sync re-embeds only what
# changed, so free's 200,000 a month indexes its 3 repositories and keeps them
# current, with room for a rebuild. 20 ingests a day covers a sync per push on a
# working day; 60 queries a minute is one a second, more than a person types and
# enough for an assistant over MCP, while a runaway script hits the wall quickly.
# Pro is for one heavy user, team for an organisation's agents and CI: each step is
# roughly 10x and 5x, so an upgrade is never a marginal gain.
DEFAULT_PLANS = {
    FREE: Plan(FREE, repositories=3, ingests_per_day=20, queries_per_minute=60,
                 embeddings_per_month=200_000),
    "pro": Plan("pro", repositories=30, ingests_per_day=200, queries_per_minute=600,
                embeddings_per_month=2_000_000),
    "team": Plan("team", repositories=150, ingests_per_day=1_000, queries_per_minute=3_000,
                 embeddings_per_month=10_000_000),
}


def load_plans(raw_json: str | None) -> dict[str, Plan]:
    """The default plans, overridden and extended by `raw_json` (the PLANS setting):
    {"pro": {"repositories": 50}, "enterprise": {"repositories": null, ...}}. A plan
    named there that exists keeps the limits it does not mention; a new plan must
    give all of them, so that a forgotten limit is not silently unlimited."""
    plans = dict(DEFAULT_PLANS)
    if raw_json is None or not raw_json.strip():
        return plans
    try:
        raw = json.loads(raw_json)
    except json.JSONDecodeError as exc:
        raise ValueError(f"PLANS is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError("PLANS must be a JSON object of plan name -> limits, "
                         f"not {type(raw).__name__}")
    for name, limits in raw.items():
        plans[name] = _plan(name, limits, plans.get(name))
    return plans


def _plan(name: str, limits: object, base: Plan | None) -> Plan:
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise ValueError(f"PLANS: plan name {name!r} must be letters, digits, '-' or '_'")
    if not isinstance(limits, dict):
        raise ValueError(f"PLANS[{name!r}] must be an object of limits, "
                         f"not {type(limits).__name__}")
    unknown = sorted(set(limits) - set(_LIMITS))
    if unknown:
        raise ValueError(f"PLANS[{name!r}]: unknown limit(s) {', '.join(unknown)}; "
                         f"known: {', '.join(_LIMITS)}")
    missing = [field for field in _LIMITS if field not in limits]
    if base is None and missing:
        raise ValueError(f"PLANS[{name!r}] is a new plan and must give every limit; "
                         f"missing: {', '.join(missing)} (null means unlimited)")
    for field, value in limits.items():
        # bool is an int in Python, and true is no limit anyone meant
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 0):
            raise ValueError(f"PLANS[{name!r}].{field} must be a whole number >= 0 or null "
                             f"(unlimited), not {value!r}")
    return Plan(name=name, **limits) if base is None else replace(base, **limits)


def smallest_first(plans: dict[str, Plan]) -> list[str]:
    """Plan names from the smallest to the largest, by repositories, then chunks,
    ingests and queries (unlimited is largest): the order upgrades go in."""
    def size(plan: Plan) -> tuple:
        return tuple(float("inf") if getattr(plan, f) is None else getattr(plan, f)
                     for f in ("repositories", "embeddings_per_month", "ingests_per_day",
                               "queries_per_minute"))
    return sorted(plans, key=lambda name: (size(plans[name]), name))
