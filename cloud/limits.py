"""Plan limits at the API: what an account's key may still do, counted where it is asked.

The owner (admin token) is never limited. For an account's key, `Metering` (ASGI
middleware inside the bearer guard) counts each question (search, context, impact,
graph) against the plan's queries per minute, one atomic counter command each
(shared/limits.py, in the queue's store); over the limit the answer is 429 with
`Retry-After` and the limit's name (`X-Limit`). A submission (ingest, register, sync)
is counted against the ingests per day once it is valid and passes the
repositories limit and the month's chunks embedded (`Tenant.admit`), so a refused or
malformed one costs nothing; the worker meters the chunks it embeds. A plan whose
payment failed holds until its grace period ends; then, like a closed account, it gets
the free plan's limits.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope as AsgiScope, Send

from cloud.errors import ApiError, handle
from shared.graph.store.accounts import FREE, Account, effective_plan
from shared.limits import Limiter, Verdict
from shared.plans import Plan

# What each metered route counts against, first match wins.
METERED: tuple[tuple[str, re.Pattern, str], ...] = tuple(
    (method, re.compile(pattern), limit) for method, pattern, limit in (
        ("POST", r"/api/v1/(search|context|impact)", "queries"),
        ("GET", r"/api/v1/graph/.*", "queries"),
    ))


def metered(method: str, path: str) -> str | None:
    for rule_method, pattern, limit in METERED:
        if rule_method == method and pattern.fullmatch(path):
            return limit
    return None


@dataclass
class PlanLimits:
    limiter: Limiter
    plans: dict[str, Plan]
    clock: Callable[[], float] = time.time

    def plan_of(self, account: Account) -> Plan:
        """The plan whose limits hold now: a closed account's, or one past its payment
        grace period, are the free plan's."""
        return self.plans.get(effective_plan(account, self.clock())) or self.plans[FREE]

    def charge(self, account: Account, limit: str, amount: int = 1) -> Verdict:
        """Count `amount` against the limit; ApiError 429 when it would pass it."""
        plan = self.plan_of(account)
        verdict = self.limiter.check(str(account.id), limit, plan.maximum(limit), amount)
        if not verdict.allowed:
            raise refusal(limit, plan, verdict)
        return verdict

    def room_for_embeddings(self, account: Account) -> None:
        """ApiError 429 when the month's chunks embedded are spent (checked before an
        ingest is queued; the worker meters what it embeds)."""
        plan = self.plan_of(account)
        verdict = self.limiter.peek(str(account.id), "embeddings", plan.maximum("embeddings"))
        if not verdict.allowed:
            raise refusal("embeddings", plan, verdict)

    def room_for_repository(self, account: Account, owned: frozenset[str], url: str) -> None:
        plan = self.plan_of(account)
        if url in owned or plan.repositories is None or len(owned) < plan.repositories:
            return
        # No Retry-After: a count, not a rate; waiting frees nothing.
        raise ApiError(429, "limit_exceeded", f"repositories: the {plan.name} plan allows "
                       f"{plan.repositories}; delete one or upgrade",
                       {"X-Limit": "repositories"})


def refusal(limit: str, plan: Plan, verdict: Verdict) -> ApiError:
    return ApiError(429, "limit_exceeded",
                    f"{limit}: the {plan.name} plan allows {verdict.limit} per "
                    f"{verdict.window}, {verdict.used} used; retry in {verdict.retry_after} s",
                    {"Retry-After": str(verdict.retry_after), "X-Limit": limit})


class Metering:
    """Pure ASGI middleware, inside BearerAuth: counts an account key's metered calls."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        who = (scope.get("state") or {}).get("principal")
        limit = metered(scope.get("method", ""), scope.get("path", "")) \
            if scope["type"] == "http" and who is not None and not who.owner else None
        if limit is not None:
            state = scope["app"].state
            try:
                await run_in_threadpool(self._charge, state, who.account_id, limit)
            except Exception as exc:  # 429, or a store unreachable: as the routes answer
                await (await handle(Request(scope), exc))(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _charge(state, account_id: int, limit: str) -> None:
        account = state.query.store.account(account_id)
        if account is None:
            raise ApiError(401, "unauthorized", "the key's account is gone")
        state.limits.charge(account, limit)


@dataclass
class Tenant:
    """An account submitting a repository: what must hold before, and be recorded
    after (the owner submits as no tenant)."""
    account: Account
    limits: PlanLimits

    def admit(self, store, url: str) -> None:
        """Count a submission of `url`; ApiError 429 (nothing counted) when it would
        pass the plan's repositories, its chunks embedded this month are spent, or its
        ingests today are."""
        self.limits.room_for_repository(self.account, store.repos_of(self.account.id), url)
        self.limits.room_for_embeddings(self.account)
        self.limits.charge(self.account, "ingests")

    def grant(self, store, url: str) -> None:
        store.grant_repo(url, self.account.id)


def tenant_of(request) -> Tenant | None:
    """The account behind the request's key (None for the owner). Blocking."""
    from cloud.auth import principal

    who = principal(request)
    if who.owner:
        return None
    state = request.app.state
    return Tenant(state.query.store.account(who.account_id), state.limits)
