"""OpenAPI paths of accounts, API keys and usage (cloud/accounts.py), and what keys add
to every secured route (403 for a missing scope, 429 for a plan limit);
cloud/openapi.py merges them into the document."""
from __future__ import annotations

import re

from cloud.auth import needed_scope
from cloud.limits import metered
from cloud.openapi_parts import error as _error, ok as _ok, object_body as _body

_SECURED = [{"bearer": []}]
_ACCOUNT = {"id": 3, "name": "Octo", "email": "ops@octo.example", "plan": "pro",
            "state": "active", "subscription_status": "active", "grace_until": None,
            "created_at": 1790000000.0, "billing": True}
_KEY = {"id": 12, "account_id": 3, "name": "ci", "prefix": "na_live_Xq3v9LbA",
        "scopes": ["ingest", "read"], "created_at": 1790000000.0, "last_used_at": None,
        "revoked": False}
_PLAN = {"name": "pro", "repositories": 30, "ingests_per_day": 200, "queries_per_minute": 600,
         "embeddings_per_month": 2000000}


_UNAUTHORIZED = _error("unauthorized", "missing or invalid token")
_FORBIDDEN = _error("forbidden", "this key lacks the 'admin' scope")
_LIMIT = _error("limit_exceeded", "queries: the free plan allows 60 per minute, 60 used; "
                                  "retry in 42 s")
_EMAIL_TAKEN = _error("conflict", "another account has the e-mail address "
                                 "'ops@octo.example'")
_ACCOUNT_ID = [{"name": "account_id", "in": "path", "required": True,
                "schema": {"type": "integer"}, "example": 3}]
_SCOPES = {"type": "array", "minItems": 1,
           "items": {"enum": ["read", "ingest", "admin"]}}


def account_paths() -> dict:
    return {
        "/api/v1/accounts": {
            "post": {"summary": "Create an account (the admin token only)", "security": _SECURED,
                     "requestBody": _body({"name": {"type": "string", "maxLength": 200},
                                           "email": {"type": "string", "maxLength": 320},
                                           "plan": {"type": "string", "default": "free"}},
                                          {"name": "Octo", "email": "ops@octo.example"},
                                          ("name", "email")),
                     "responses": {"201": _ok("Created", _ACCOUNT),
                                   "400": _error("bad_request", "email must be an e-mail address"),
                                   "401": _UNAUTHORIZED, "403": _FORBIDDEN,
                                   "409": _EMAIL_TAKEN}},
            "get": {"summary": "Every account (the admin token only)", "security": _SECURED,
                    "responses": {"200": _ok("Accounts", {"accounts": [_ACCOUNT]}),
                                  "401": _UNAUTHORIZED, "403": _FORBIDDEN}}},
        "/api/v1/accounts/me": {"get": {
            "summary": "Who the caller is: the owner, or an account with its plan and limits",
            "security": _SECURED,
            "responses": {"200": _ok("The caller", {"owner": False, "account": _ACCOUNT,
                                                    "scopes": ["read"], "plan": _PLAN,
                                                    "billing": True,
                                                    "plan_order": ["free", "pro", "team"],
                                                    "for_sale": ["pro", "team"],
                                                    "repositories": 4}),
                          "401": _UNAUTHORIZED}}},
        "/api/v1/accounts/{account_id}": {
            "patch": {"summary": "Change an account's name, e-mail address or plan (the admin "
                                 "token only; no Stripe needed)", "security": _SECURED,
                      "parameters": _ACCOUNT_ID,
                      "requestBody": _body({"name": {"type": "string", "maxLength": 200},
                                            "email": {"type": "string", "maxLength": 320},
                                            "plan": {"type": "string", "description":
                                                     "one of the configured plans"}},
                                           {"plan": "team"}, ()),
                      "responses": {"200": _ok("Changed", {**_ACCOUNT, "plan": "team"}),
                                    "400": _error("bad_request", "plan must be one of free, "
                                                                 "pro, team"),
                                    "401": _UNAUTHORIZED, "403": _FORBIDDEN,
                                    "404": _error("not_found", "no account with id '9'"),
                                    "409": _EMAIL_TAKEN}},
            "delete": {"summary": "Delete an account (the admin token only): its keys revoked "
                                  "at once, its repositories let go of (deleted where no other "
                                  "account owns them)", "security": _SECURED,
                       "parameters": _ACCOUNT_ID,
                       "responses": {
                           "200": _ok("Deleted", {"deleted": 3,
                                                  "repositories_deleted": [
                                                      "https://github.com/octo/only"],
                                                  "repositories_released": [
                                                      "https://github.com/octo/shared"]}),
                           "401": _UNAUTHORIZED, "403": _FORBIDDEN,
                           "404": _error("not_found", "no account with id '9'"),
                           "409": _error("subscribed", "account 3 has a subscription "
                                                       "(active); cancel it first (POST "
                                                       "/api/v1/billing/portal, or Stripe's "
                                                       "dashboard), then delete")}}},
        "/api/v1/accounts/{account_id}/keys": {
            "post": {"summary": "Create an API key: its secret is in this answer only",
                     "security": _SECURED, "parameters": _ACCOUNT_ID,
                     "requestBody": _body({"name": {"type": "string", "maxLength": 100},
                                           "scopes": _SCOPES},
                                          {"name": "ci", "scopes": ["read", "ingest"]},
                                          ("name", "scopes")),
                     "responses": {
                         "201": _ok("Created", {**_KEY, "key": "na_live_" + "x" * 43}),
                         "400": _error("bad_request", "scopes must be a non-empty list of "
                                                      "admin, ingest, read"),
                         "401": _UNAUTHORIZED, "403": _FORBIDDEN,
                         "404": _error("not_found", "no account with id '9'"),
                         "409": _error("conflict", "the account has 100 live keys; revoke "
                                                   "one first")}},
            "get": {"summary": "The account's keys (never their secrets)", "security": _SECURED,
                    "parameters": _ACCOUNT_ID,
                    "responses": {"200": _ok("Keys", {"keys": [_KEY]}), "401": _UNAUTHORIZED,
                                  "403": _FORBIDDEN,
                                  "404": _error("not_found", "no account with id '9'")}}},
        "/api/v1/keys/{key_id}": {"delete": {
            "summary": "Revoke a key (at once: its next request is a 401)", "security": _SECURED,
            "parameters": [{"name": "key_id", "in": "path", "required": True,
                            "schema": {"type": "integer"}, "example": 12}],
            "responses": {"200": _ok("Revoked", {"revoked": 12, "was_live": True}),
                          "401": _UNAUTHORIZED, "403": _FORBIDDEN,
                          "404": _error("not_found", "no key with id '99'")}}},
        "/api/v1/usage": {"get": {
            "summary": "Usage per UTC day: ingests, queries, chunks embedded",
            "security": _SECURED,
            "parameters": [{"name": "account_id", "in": "query", "schema": {"type": "integer"},
                            "description": "The account (the admin token must name one)"},
                           {"name": "days", "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 40}}],
            "responses": {"200": _ok("Usage", {"account_id": 3, "plan": _PLAN,
                                               "repositories": 4, "days": [
                {"day": "2026-12-04", "ingests": 3, "queries": 120, "embeddings": 5400}]}),
                "400": _error("bad_request", "days must be 1 to 40"),
                "401": _UNAUTHORIZED, "404": _error("not_found", "no account with id '9'")}}},
    }


def billing_paths() -> dict:
    off = _error("billing_off", "billing is not configured on this control plane "
                                "(STRIPE_SECRET_KEY is not set)")
    unavailable = _error("stripe_unavailable", "Stripe did not answer; try again shortly")
    account = {"account_id": {"type": "integer",
                              "description": "The account (the admin token must name one)"}}
    return {
        "/api/v1/billing/checkout": {"post": {
            "summary": "Upgrade: a Stripe Checkout session (subscription) for a plan; open "
                       "its url", "security": _SECURED,
            "requestBody": _body({"plan": {"type": "string", "description":
                                           "a plan with a STRIPE_PRICE_<PLAN> setting "
                                           "(/api/v1/accounts/me says which)"}, **account},
                                 {"plan": "pro"}, ("plan",)),
            "responses": {"200": _ok("The Checkout page",
                                     {"url": "https://checkout.stripe.com/c/pay/cs_test_a1"}),
                          "400": _error("bad_request", "plan must be one of pro, team"),
                          "401": _UNAUTHORIZED, "404": off,
                          "409": _error("already_subscribed", "the account has a live "
                                                              "subscription; change it in the "
                                                              "Customer Portal"),
                          "502": _error("stripe_error", "Stripe refused the request"),
                          "503": unavailable}}},
        "/api/v1/billing/portal": {"post": {
            "summary": "Manage the subscription: a Stripe Customer Portal session; open its "
                       "url", "security": _SECURED,
            "requestBody": {"required": False, "content": {"application/json": {
                "schema": {"type": "object", "additionalProperties": False,
                           "properties": account}}}},
            "responses": {"200": _ok("The Portal", {"url": "https://billing.stripe.com/p/s/1"}),
                          "400": _error("no_customer", "the account has not subscribed yet"),
                          "401": _UNAUTHORIZED, "404": off,
                          "502": _error("stripe_error", "Stripe refused the request"),
                          "503": unavailable}}},
        "/api/v1/billing/stripe-webhook": {"post": {
            "summary": "Stripe's events (checkout.session.completed, customer.subscription."
                       "created|updated|deleted, invoice.paid, invoice.payment_failed)",
            "description": "Authenticated by the Stripe-Signature header (STRIPE_WEBHOOK_"
                           "SECRET), not the bearer token. Each event id is applied once; "
                           "an older subscription event never undoes a newer one.",
            "security": [],
            "requestBody": {"required": True, "content": {"application/json": {}}},
            "responses": {"200": _ok("Applied, duplicate, ignored or stale",
                                     {"status": "applied"}),
                          "400": _error("bad_signature", "the Stripe-Signature header does "
                                                         "not verify"),
                          "404": off, "413": _error("too_large", "the body is over 1 MB"),
                          "503": unavailable}}},
    }


def with_keys(paths: dict) -> dict:
    """Every secured operation may answer 403 (a key without the scope it needs), and
    every metered one 429 (a plan limit; a full queue says so in its own words)."""
    for path, operations in paths.items():
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        for method, operation in operations.items():
            if not operation.get("security"):
                continue
            responses = operation.setdefault("responses", {})
            scope = needed_scope(method.upper(), concrete)
            if scope is not None:
                responses.setdefault("403", _error("forbidden", f"this key lacks the "
                                                                f"{scope.value!r} scope"))
            if metered(method.upper(), concrete):
                if "429" in responses:
                    responses["429"] = {**responses["429"], "description": (
                        responses["429"]["description"] + "; or a plan limit was reached "
                        "(error limit_exceeded, Retry-After)")}
                else:
                    responses["429"] = _LIMIT
    return paths
