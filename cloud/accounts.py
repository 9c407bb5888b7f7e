"""Accounts and their API keys over HTTP.

    POST   /api/v1/accounts                 {name, email, plan?}   the admin token only
    GET    /api/v1/accounts                 every account           the admin token only
    PATCH  /api/v1/accounts/{id}            {name?, email?, plan?}  the admin token only
    DELETE /api/v1/accounts/{id}            keys revoked, repositories let go of (deleted
                                            where it was the only owner); the admin token
    GET    /api/v1/accounts/me              who the caller is: owner, or account, plan, limits
    POST   /api/v1/accounts/{id}/keys       {name, scopes}  -> {id, key, prefix, scopes}
    GET    /api/v1/accounts/{id}/keys       the keys, never their secrets
    DELETE /api/v1/keys/{id}                revoke
    GET    /api/v1/usage                    repositories owned; per UTC day: ingests, queries,
                                            chunks embedded

An e-mail address belongs to one account (any case): a second is 409. A key's secret
is in the answer that creates it and nowhere else, ever. An account's
key (with the admin scope) manages its own account's keys; another account's id is a
404, as if it did not exist. The bearer guard (cloud/auth.py) has checked the scope.
"""
from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from cloud.auth import principal
from cloud.billing import LIVE
from cloud.body import json_object
from cloud.errors import ApiError
from cloud.repos import release_repo
from shared.graph.store.accounts import Account, Scope
from shared.plans import smallest_first

MAX_BODY = 16 * 1024
MAX_KEYS = 100  # live keys per account
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}")


async def _body(request: Request, allowed: set[str]) -> dict:
    return await json_object(request, allowed, MAX_BODY)


def _text(body: dict, name: str, maximum: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > maximum \
            or not value.isprintable():
        raise ApiError(400, "bad_request", f"{name} must be 1 to {maximum} printable characters")
    return value.strip()


def _store(request: Request):
    return request.app.state.query.store


def _plans(request: Request) -> dict:
    return request.app.state.plans


def _account(request: Request, raw: str) -> Account:
    """The account the path names, if the caller may manage it (else 404)."""
    who = principal(request)
    account = _store(request).account(int(raw)) if raw.isdigit() and len(raw) < 19 else None
    if account is None or (not who.owner and who.account_id != account.id):
        raise ApiError(404, "not_found", f"no account with id {raw[:20]!r}")
    return account


def _email(body: dict) -> str:
    email = _text(body, "email", 320)
    if not _EMAIL.fullmatch(email):
        raise ApiError(400, "bad_request", "email must be an e-mail address")
    return email


def _plan(request: Request, body: dict) -> str:
    plan = body.get("plan", "free")
    if not isinstance(plan, str) or plan not in _plans(request):
        raise ApiError(400, "bad_request", f"plan must be one of {', '.join(_plans(request))}")
    return plan


def _email_taken(email: str) -> ApiError:
    return ApiError(409, "conflict", f"another account has the e-mail address {email!r}")


async def create_account(request: Request) -> JSONResponse:
    principal(request).require_owner()
    body = await _body(request, {"name", "email", "plan"})
    name, email, plan = _text(body, "name", 200), _email(body), _plan(request, body)
    account = await run_in_threadpool(_store(request).create_account, name, email, plan)
    if account is None:
        raise _email_taken(email)
    return JSONResponse(account.public(), status_code=201)


async def change_account(request: Request) -> JSONResponse:
    """Name, e-mail address or plan, by the owner (no Stripe needed: a plan given by
    hand). A later Stripe event about the account's subscription sets the plan it pays
    for again."""
    principal(request).require_owner()
    body = await _body(request, {"name", "email", "plan"})
    changes = {"name": _text(body, "name", 200) if "name" in body else None,
               "email": _email(body) if "email" in body else None,
               "plan": _plan(request, body) if "plan" in body else None}

    def work() -> dict:
        account = _account(request, str(request.path_params["account_id"]))
        if not _store(request).update_account(account.id, **changes):
            raise _email_taken(changes["email"])
        return _store(request).account(account.id).public()
    return JSONResponse(await run_in_threadpool(work))


async def delete_account(request: Request) -> JSONResponse:
    """The account and its keys, at once; each of its repositories let go of as its
    own deletion by the account does (removed where no other account owns it). Refused
    while Stripe bills it: cancel the subscription first (the billing portal, or
    Stripe's dashboard), so that money is never moved as a side effect of this call."""
    principal(request).require_owner()

    def work() -> dict:
        account = _account(request, str(request.path_params["account_id"]))
        if account.subscription_status in LIVE:
            raise ApiError(409, "subscribed", f"account {account.id} has a subscription "
                           f"({account.subscription_status}); cancel it first (POST "
                           "/api/v1/billing/portal, or Stripe's dashboard), then delete")
        store = _store(request)
        for key in store.keys(account.id):  # no request of its keys is answered from now
            store.revoke_key(key.id)
        released, deleted = [], []
        for url in sorted(store.repos_of(account.id)):
            (released if release_repo(request, url, account.id) else deleted).append(url)
        store.delete_account(account.id)
        return {"deleted": account.id, "repositories_deleted": deleted,
                "repositories_released": released}
    return JSONResponse(await run_in_threadpool(work))


def list_accounts(request: Request) -> JSONResponse:
    principal(request).require_owner()
    return JSONResponse({"accounts": [a.public() for a in _store(request).accounts()]})


def me(request: Request) -> JSONResponse:
    who = principal(request)
    scopes = sorted(s.value for s in who.scopes)
    settings = request.app.state.settings
    # the plans, smallest first (the order upgrades go in), and those Checkout can sell
    # here: the ones with a Stripe price
    order = smallest_first(_plans(request))
    prices = dict(settings.stripe_prices) if settings.billing else {}
    sale = {"billing": settings.billing, "plan_order": order,
            "for_sale": [plan for plan in order if plan in prices]}
    if who.owner:
        return JSONResponse({"owner": True, "account": None, "scopes": scopes, **sale})
    account = _store(request).account(who.account_id)
    plan = request.app.state.limits.plan_of(account)
    return JSONResponse({"owner": False, "account": account.public(), "scopes": scopes,
                         "plan": plan.public(), **sale,
                         "repositories": len(_store(request).repos_of(account.id))})


async def create_key(request: Request) -> JSONResponse:
    body = await _body(request, {"name", "scopes"})
    name = _text(body, "name", 100)
    scopes = body.get("scopes")
    names = {s.value for s in Scope}
    if not isinstance(scopes, list) or not scopes or not all(
            isinstance(s, str) and s in names for s in scopes):
        raise ApiError(400, "bad_request", f"scopes must be a non-empty list of "
                                           f"{', '.join(sorted(names))}")
    who = principal(request)
    if not who.owner and not set(scopes) <= {s.value for s in who.scopes}:
        raise ApiError(403, "forbidden", "a key cannot make a key with scopes it lacks")

    def work() -> dict:
        account = _account(request, request.path_params["account_id"])
        store = _store(request)
        if sum(1 for k in store.keys(account.id) if not k.revoked_at) >= MAX_KEYS:
            raise ApiError(409, "conflict", f"the account has {MAX_KEYS} live keys; "
                                            "revoke one first")
        key, secret = store.create_key(account.id, name, [Scope(s) for s in scopes])
        return {**key.public(), "key": secret}
    return JSONResponse(await run_in_threadpool(work), status_code=201)


def list_keys(request: Request) -> JSONResponse:
    account = _account(request, request.path_params["account_id"])
    return JSONResponse({"keys": [k.public() for k in _store(request).keys(account.id)]})


def revoke_key(request: Request) -> JSONResponse:
    raw = request.path_params["key_id"]
    store = _store(request)
    key = store.key(int(raw)) if raw.isdigit() and len(raw) < 19 else None
    who = principal(request)
    if key is None or (not who.owner and key.account_id != who.account_id):
        raise ApiError(404, "not_found", f"no key with id {raw[:20]!r}")
    revoked = store.revoke_key(key.id)
    return JSONResponse({"revoked": key.id, "was_live": revoked})


def usage(request: Request) -> JSONResponse:
    """The caller's account's usage (the owner names `account_id`)."""
    who = principal(request)
    unknown = sorted(set(request.query_params) - {"account_id", "days"})
    if unknown:
        raise ApiError(400, "bad_request", f"unknown query parameter {unknown[0][:40]!r}; "
                                           "it takes account_id, days")
    raw_days = request.query_params.get("days", "30")
    if not raw_days.isdigit() or not 1 <= int(raw_days) <= 40:
        raise ApiError(400, "bad_request", "days must be 1 to 40")
    if who.owner:
        raw = request.query_params.get("account_id", "")
        if not raw:
            raise ApiError(400, "bad_request", "account_id is required with the admin token")
        account = _account(request, raw)
    else:
        account = _store(request).account(who.account_id)
    limits = request.app.state.limits
    return JSONResponse({"account_id": account.id, "plan": limits.plan_of(account).public(),
                         "repositories": len(_store(request).repos_of(account.id)),
                         "days": limits.limiter.usage(str(account.id), int(raw_days))})
