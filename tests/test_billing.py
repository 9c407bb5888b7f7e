"""Stripe billing (cloud/billing.py): the real `stripe` SDK against a stand-in of Stripe's
API (tests/stripe_server.py), webhooks signed with Stripe's own scheme, accounts in the
graph store on SQLite and PostgreSQL."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import stripe
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.testclient import TestClient
from tenacity import wait_none

from cloud import billing
from cloud.auth import BearerAuth
from cloud.errors import EXCEPTION_HANDLERS
from shared.graph.store.accounts import Account, AccountState, Scope, effective_plan
from shared.settings import Settings
from tests.stripe_server import StripeServer
from tests.test_graph_store import graph_backend, open_store, store  # noqa: F401 (fixtures)

OWNER = "owner-token-" + "x" * 20
SECRET_KEY = "sk_test_" + secrets.token_hex(24)
WEBHOOK_SECRET = "whsec_" + secrets.token_hex(16)
PRICES = (("pro", "price_pro_1"), ("team", "price_team_1"))
PUBLIC = "https://alexandria.example"
CHECKOUT = "/api/v1/billing/checkout"
PORTAL = "/api/v1/billing/portal"
WEBHOOK = "/api/v1/billing/stripe-webhook"
AS_OWNER = {"Authorization": f"Bearer {OWNER}"}
# Stripe's API failing involves the store no differently on PostgreSQL: SQLite is enough.
SQLITE_ONLY = pytest.mark.parametrize("graph_backend", ["sqlite"])


# --- fixtures --------------------------------------------------------------------------------

@pytest.fixture
def stripe_server():
    server = StripeServer(SECRET_KEY, stall_seconds=1.5)
    yield server
    server.stop()


def settings_for(server: StripeServer | None) -> Settings:
    if server is None:
        return Settings(admin_token=OWNER)
    return Settings(admin_token=OWNER, stripe_secret_key=SECRET_KEY,
                    stripe_webhook_secret=WEBHOOK_SECRET, stripe_prices=PRICES,
                    stripe_api_base=server.url, public_url=PUBLIC)


def make_app(store, server: StripeServer | None, **api_options) -> TestClient:
    """The three handlers behind the real bearer guard and error mapping."""
    app = Starlette(routes=[Route(CHECKOUT, billing.checkout, methods=["POST"]),
                            Route(PORTAL, billing.portal, methods=["POST"]),
                            Route(WEBHOOK, billing.stripe_webhook, methods=["POST"])],
                    middleware=[Middleware(BearerAuth)], exception_handlers=EXCEPTION_HANDLERS)
    app.state.settings = settings_for(server)
    app.state.query = SimpleNamespace(store=store)
    if server is not None:  # no waiting between retries in tests
        app.state.stripe = billing.StripeApi(app.state.settings, wait=wait_none(),
                                             **api_options)
    return TestClient(app)


@pytest.fixture
def client(store, stripe_server):
    with make_app(store, stripe_server) as test_client:
        yield test_client


@pytest.fixture
def account(store) -> Account:
    return store.create_account("Octo", "ops@octo.example")


def key_of(store, account: Account, scopes=(Scope.ADMIN,)) -> dict:
    _, secret = store.create_key(account.id, "billing", scopes)
    return {"Authorization": f"Bearer {secret}"}


# --- Stripe's webhook signatures, computed here ----------------------------------------------

def sign(payload: str, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """Stripe-Signature: t=<unix time>,v1=HMAC-SHA256(secret, "<t>.<payload>")."""
    t = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event(kind: str, obj: dict, created: int, event_id: str | None = None) -> str:
    return json.dumps({"id": event_id or "evt_" + secrets.token_hex(8), "object": "event",
                       "api_version": "2025-09-30.clover", "created": created, "type": kind,
                       "livemode": False, "pending_webhooks": 1, "data": {"object": obj}})


def subscription(customer: str, status: str = "active", price: str = "price_pro_1",
                 sub_id: str = "sub_1") -> dict:
    return {"id": sub_id, "object": "subscription", "customer": customer, "status": status,
            "items": {"object": "list", "data": [
                {"id": "si_1", "object": "subscription_item",
                 "price": {"id": price, "object": "price"}}]}}


def invoice(customer: str, invoice_id: str = "in_1") -> dict:
    return {"id": invoice_id, "object": "invoice", "customer": customer, "status": "open"}


def deliver(client: TestClient, payload: str, signature: str | None = "sign"):
    headers = {"Content-Type": "application/json"}
    if signature == "sign":
        signature = sign(payload)
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return client.post(WEBHOOK, content=payload, headers=headers)


def customer_of(store, account: Account, customer: str = "cus_test1") -> Account:
    store.set_customer(account.id, customer)
    return store.account(account.id)


# --- Checkout and the portal -----------------------------------------------------------------

def test_checkout_creates_one_customer_and_sends_stripes_parameters(client, store, account,
                                                                     stripe_server):
    answer = client.post(CHECKOUT, json={"plan": "pro", "account_id": account.id},
                         headers=AS_OWNER)
    assert answer.status_code == 200, answer.text
    assert answer.json()["url"].startswith("https://checkout.stripe.com/c/pay/cs_test_")
    [made] = stripe_server.calls("/v1/customers")
    assert made.form == {"email": "ops@octo.example", "name": "Octo",
                         "metadata[account_id]": str(account.id)}
    customer = store.account(account.id).stripe_customer
    assert customer in stripe_server.customers
    [session] = stripe_server.calls("/v1/checkout/sessions")
    assert session.headers["authorization"] == f"Bearer {SECRET_KEY}"
    assert session.headers["idempotency-key"].startswith("na-checkout-")
    assert {k: session.form[k] for k in (
        "mode", "customer", "client_reference_id", "line_items[0][price]",
        "line_items[0][quantity]", "subscription_data[metadata][account_id]", "cancel_url",
    )} == {"mode": "subscription", "customer": customer, "client_reference_id": str(account.id),
           "line_items[0][price]": "price_pro_1", "line_items[0][quantity]": "1",
           "subscription_data[metadata][account_id]": str(account.id),
           "cancel_url": f"{PUBLIC}/?billing=cancelled"}
    assert session.form["success_url"] == \
        f"{PUBLIC}/?billing=success&session_id={{CHECKOUT_SESSION_ID}}"
    again = client.post(CHECKOUT, json={"plan": "team", "account_id": account.id},
                         headers=AS_OWNER)
    assert again.status_code == 200
    assert len(stripe_server.calls("/v1/customers")) == 1  # the stored customer is reused
    assert stripe_server.calls("/v1/checkout/sessions")[1].form["customer"] == customer
    assert stripe_server.calls("/v1/checkout/sessions")[1].form["line_items[0][price]"] \
        == "price_team_1"


def test_an_accounts_key_pays_for_its_own_account_only(client, store, account, stripe_server):
    other = store.create_account("Other", "other@example.org")
    mine = key_of(store, account)
    assert client.post(CHECKOUT, json={"plan": "pro"}, headers=mine).status_code == 200
    assert stripe_server.calls("/v1/checkout/sessions")[0].form["client_reference_id"] \
        == str(account.id)
    refused = client.post(CHECKOUT, json={"plan": "pro", "account_id": other.id}, headers=mine)
    assert (refused.status_code, refused.json()["error"]) == (404, "not_found")
    assert client.post(PORTAL, json={"account_id": other.id}, headers=mine).status_code == 404
    reader = key_of(store, account, [Scope.READ])
    assert client.post(CHECKOUT, json={"plan": "pro"}, headers=reader).status_code == 403
    assert client.post(CHECKOUT, json={"plan": "pro"}).status_code == 401
    assert len(stripe_server.calls("/v1/checkout/sessions")) == 1


@SQLITE_ONLY
@pytest.mark.parametrize("body, status", [
    ({"plan": "pro"}, 400),  # the owner must name the account
    ({"plan": "gold", "account_id": 1}, 400),
    ({"plan": "free", "account_id": 1}, 400),  # free is not sold
    ({"plan": "pro", "account_id": "1"}, 400),
    ({"plan": "pro", "account_id": True}, 400),
    ({"plan": "pro", "account_id": 1, "coupon": "x"}, 400),
    ({"plan": "pro", "account_id": 999}, 404),
    (["pro"], 400),
])
def test_checkout_refuses_what_it_cannot_sell(client, account, stripe_server, body, status):
    answer = client.post(CHECKOUT, json=body, headers=AS_OWNER)
    assert answer.status_code == status, answer.text
    assert stripe_server.calls() == []


def test_no_second_subscription_and_no_checkout_for_a_closed_account(client, store, account,
                                                                      stripe_server):
    store.apply_subscription(account.id, "sub_1", "active", "pro", event_at=100)
    answer = client.post(CHECKOUT, json={"plan": "team", "account_id": account.id},
                         headers=AS_OWNER)
    assert (answer.status_code, answer.json()["error"]) == (409, "already_subscribed")
    store.set_plan(account.id, "pro", AccountState.CLOSED)
    answer = client.post(CHECKOUT, json={"plan": "team", "account_id": account.id},
                         headers=AS_OWNER)
    assert (answer.status_code, answer.json()["error"]) == (409, "account_closed")
    assert stripe_server.calls() == []


def test_the_portal_needs_a_customer_then_opens_for_it(client, store, account, stripe_server):
    answer = client.post(PORTAL, json={"account_id": account.id}, headers=AS_OWNER)
    assert (answer.status_code, answer.json()["error"]) == (400, "no_customer")
    client.post(CHECKOUT, json={"plan": "pro", "account_id": account.id}, headers=AS_OWNER)
    answer = client.post(PORTAL, headers=key_of(store, account))  # no body: its own account
    assert answer.status_code == 200, answer.text
    assert answer.json()["url"].startswith("https://billing.stripe.com/p/session/")
    [call] = stripe_server.calls("/v1/billing_portal/sessions")
    assert call.form == {"customer": store.account(account.id).stripe_customer,
                         "return_url": f"{PUBLIC}/"}


@SQLITE_ONLY
def test_billing_off_is_a_404_that_says_so(store, account):
    with make_app(store, None) as off:
        for path, body in ((CHECKOUT, {"plan": "pro", "account_id": account.id}),
                           (PORTAL, {"account_id": account.id})):
            answer = off.post(path, json=body, headers=AS_OWNER)
            assert (answer.status_code, answer.json()["error"]) == (404, "billing_off")
            assert "STRIPE_SECRET_KEY" in answer.json()["detail"]
        payload = event("invoice.paid", invoice("cus_x"), int(time.time()))
        assert deliver(off, payload).status_code == 404


# --- Stripe's API failing --------------------------------------------------------------------

@SQLITE_ONLY
@pytest.mark.parametrize("fault", ["500", "429", "drop", "drop_after"])
def test_passing_failures_are_retried_with_the_same_idempotency_key(
        client, store, account, stripe_server, fault):
    stripe_server.fail(2, fault)  # the customer's create, twice
    answer = client.post(CHECKOUT, json={"plan": "pro", "account_id": account.id},
                         headers=AS_OWNER)
    assert answer.status_code == 200, answer.text
    attempts = stripe_server.calls("/v1/customers")
    assert [c.fault for c in attempts] == [fault, fault, ""]
    assert len({c.headers["idempotency-key"] for c in attempts}) == 1
    # drop_after: the first attempt created it, the retries got it back
    assert list(stripe_server.customers) == [store.account(account.id).stripe_customer]


@SQLITE_ONLY
def test_a_refusal_is_not_retried(client, store, account, stripe_server):
    store.set_customer(account.id, "cus_unknown")  # the stand-in never made it: a 404
    answer = client.post(CHECKOUT, json={"plan": "pro", "account_id": account.id},
                         headers=AS_OWNER)
    assert (answer.status_code, answer.json()["error"]) == (502, "stripe_error")
    assert "resource_missing" in answer.json()["detail"]
    stripe_server.fail(1, "400")
    answer = client.post(PORTAL, json={"account_id": account.id}, headers=AS_OWNER)
    assert (answer.status_code, answer.json()["error"]) == (502, "stripe_error")
    assert len(stripe_server.calls("/v1/checkout/sessions")) == 1
    assert len(stripe_server.calls("/v1/billing_portal/sessions")) == 1


@SQLITE_ONLY
def test_after_the_last_attempt_stripe_is_unavailable(client, account, stripe_server):
    stripe_server.fail(billing.ATTEMPTS, "500")
    answer = client.post(CHECKOUT, json={"plan": "pro", "account_id": account.id},
                         headers=AS_OWNER)
    assert (answer.status_code, answer.json()["error"]) == (503, "stripe_unavailable")
    assert answer.headers["Retry-After"] == "30"
    assert len(stripe_server.calls()) == billing.ATTEMPTS


@SQLITE_ONLY
def test_a_stalled_call_times_out_and_is_retried(store, account, stripe_server):
    stripe_server.fail(1, "stall")
    with make_app(store, stripe_server, timeout=(1.0, 0.3)) as client:
        started = time.monotonic()
        answer = client.post(CHECKOUT, json={"plan": "pro", "account_id": account.id},
                             headers=AS_OWNER)
    assert answer.status_code == 200, answer.text
    assert time.monotonic() - started < stripe_server.stall_seconds
    assert [c.fault for c in stripe_server.calls("/v1/customers")] == ["stall", ""]


@SQLITE_ONLY
@pytest.mark.parametrize("fault", ["400", "500", "429", "drop"])
def test_the_secret_key_never_leaks(client, store, account, stripe_server, caplog, fault):
    """Even a server that quotes the key back in its errors gets it into no answer and
    no log line, ours or the SDK's, at any level."""
    stripe_server.echo_key = True
    stripe_server.fail(billing.ATTEMPTS, fault)
    caplog.set_level(logging.DEBUG)
    answer = client.post(CHECKOUT, json={"plan": "pro", "account_id": account.id},
                         headers=AS_OWNER)
    assert answer.status_code in (502, 503)
    assert SECRET_KEY not in answer.text and SECRET_KEY[8:] not in answer.text
    assert any(r.name == "cloud.billing" for r in caplog.records)
    assert any(r.name == "stripe" for r in caplog.records)
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        assert SECRET_KEY not in text and SECRET_KEY[8:] not in text, record.name
    if fault == "400":  # the echo reached the SDK's log, masked
        assert any("(key Bearer ***)" in r.getMessage() for r in caplog.records
                   if r.name == "stripe")


@SQLITE_ONLY
def test_a_wrong_key_is_stripes_401_and_is_not_retried(store, account, stripe_server):
    stripe_server.api_key = "sk_test_another"
    with make_app(store, stripe_server) as client:
        answer = client.post(CHECKOUT, json={"plan": "pro", "account_id": account.id},
                             headers=AS_OWNER)
    assert (answer.status_code, answer.json()["error"]) == (502, "stripe_error")
    assert SECRET_KEY not in answer.text and len(stripe_server.calls()) == 1


# --- webhooks --------------------------------------------------------------------------------

def test_the_signature_computed_here_is_stripes():
    payload = event("invoice.paid", invoice("cus_1"), 100)
    header = sign(payload)
    assert stripe.WebhookSignature.verify_header(payload, header, WEBHOOK_SECRET, 300)
    assert stripe.Webhook.construct_event(payload, header, WEBHOOK_SECRET).type == "invoice.paid"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, sign(payload, "whsec_other"), WEBHOOK_SECRET)


def test_a_bad_missing_or_stale_signature_applies_nothing(client, store, account):
    customer_of(store, account)
    payload = event("customer.subscription.created", subscription("cus_test1"), 100,
                    event_id="evt_forged")
    now = int(time.time())
    for signature in (sign(payload, "whsec_not_the_secret"), None, "",
                      "t=abc,v1=nothex", sign(payload, at=now - 301),
                      sign(payload.replace("sub_1", "sub_2"))):
        answer = deliver(client, payload, signature)
        assert (answer.status_code, answer.json()["error"]) == (400, "bad_signature"), signature
    assert store.account(account.id).plan == "free"
    assert store._query("SELECT id FROM stripe_events") == []  # the forged id never was:
    answer = deliver(client, payload)
    assert answer.json() == {"status": "applied"}  # signed properly, it applies
    assert store.account(account.id).plan == "pro"


@SQLITE_ONLY
def test_a_signed_body_that_is_not_an_event_is_refused(client):
    for body in ("not json", json.dumps({"id": "evt_1", "type": "invoice.paid"})):
        answer = deliver(client, body)
        assert (answer.status_code, answer.json()["error"]) == (400, "bad_request")


def test_a_replay_is_a_duplicate_and_an_unknown_type_is_ignored(client, store, account):
    customer_of(store, account)
    payload = event("customer.subscription.created", subscription("cus_test1"), 100)
    assert deliver(client, payload).json() == {"status": "applied"}
    store.set_plan(account.id, "free")  # had it applied twice, plan would be pro again
    assert deliver(client, payload).json() == {"status": "duplicate"}
    assert store.account(account.id).plan == "free"
    answer = deliver(client, event("customer.created", {"id": "cus_x", "object": "customer"},
                                   100))
    assert (answer.status_code, answer.json()) == (200, {"status": "ignored"})
    unknown = deliver(client, event("invoice.paid", invoice("cus_nobody"), 100))
    assert unknown.json() == {"status": "ignored"}


def test_an_older_subscription_event_changes_nothing(client, store, account):
    customer_of(store, account)
    newer = event("customer.subscription.updated", subscription("cus_test1",
                                                                price="price_team_1"), 200)
    older = event("customer.subscription.created", subscription("cus_test1"), 100)
    assert deliver(client, newer).json() == {"status": "applied"}
    assert deliver(client, older).json() == {"status": "stale"}
    now = store.account(account.id)
    assert (now.plan, now.subscription_status, now.subscription_at) == ("team", "active", 200)


def test_within_one_second_a_creation_comes_first_and_a_deletion_last(client, store, account):
    customer_of(store, account)
    active = event("customer.subscription.updated", subscription("cus_test1"), 300)
    created = event("customer.subscription.created",
                    subscription("cus_test1", status="incomplete"), 300)
    assert deliver(client, active).json() == {"status": "applied"}
    assert deliver(client, created).json() == {"status": "stale"}
    assert store.account(account.id).plan == "pro"
    gone = event("customer.subscription.deleted",
                 subscription("cus_test1", status="canceled"), 400)
    late = event("customer.subscription.updated", subscription("cus_test1"), 400)
    assert deliver(client, gone).json() == {"status": "applied"}
    assert deliver(client, late).json() == {"status": "stale"}
    assert store.account(account.id).plan == "free"


def test_checkout_completed_links_the_customer_and_never_replaces_one(client, store, account):
    session = {"id": "cs_test_1", "object": "checkout.session", "mode": "subscription",
               "client_reference_id": str(account.id), "customer": "cus_linked"}
    assert deliver(client, event("checkout.session.completed", session, 100)).json() \
        == {"status": "applied"}
    assert store.account_by_customer("cus_linked").id == account.id
    other = {**session, "customer": "cus_someone_else"}
    assert deliver(client, event("checkout.session.completed", other, 101)).json() \
        == {"status": "ignored"}
    assert store.account(account.id).stripe_customer == "cus_linked"


def test_a_subscription_that_is_not_paid_for_gives_the_free_plan(client, store, account):
    customer_of(store, account)
    deliver(client, event("customer.subscription.created",
                          subscription("cus_test1", status="incomplete"), 100))
    assert store.account(account.id).plan == "free"
    deliver(client, event("customer.subscription.updated", subscription("cus_test1"), 110))
    assert store.account(account.id).plan == "pro"


def test_a_failed_payment_starts_the_grace_period_and_a_payment_ends_it(
        client, store, account, stripe_server):
    customer_of(store, account)
    deliver(client, event("customer.subscription.created", subscription("cus_test1"), 100))
    stripe_server.set_invoice("in_1", "cus_test1", "open")
    failed_at = int(time.time())
    assert deliver(client, event("invoice.payment_failed", invoice("cus_test1"),
                                 failed_at)).json() == {"status": "applied"}
    now = store.account(account.id)
    assert now.state is AccountState.PAST_DUE and now.plan == "pro"
    assert now.grace_until == failed_at + billing.GRACE_SECONDS
    assert effective_plan(now, failed_at + billing.GRACE_SECONDS - 1) == "pro"
    assert effective_plan(now, failed_at + billing.GRACE_SECONDS + 1) == "free"
    deliver(client, event("invoice.payment_failed", invoice("cus_test1"), failed_at + 86_400))
    assert store.account(account.id).grace_until == now.grace_until  # not extended
    assert [c.path for c in stripe_server.calls()] == ["/v1/invoices/in_1"] * 2
    assert deliver(client, event("invoice.paid", invoice("cus_test1"), failed_at + 90_000)
                   ).json() == {"status": "applied"}
    paid = store.account(account.id)
    assert (paid.state, paid.grace_until) == (AccountState.ACTIVE, 0)
    assert effective_plan(paid, failed_at + 10 * billing.GRACE_SECONDS) == "pro"


def test_a_late_failure_of_an_invoice_since_paid_changes_nothing(client, store, account,
                                                                  stripe_server):
    customer_of(store, account)
    stripe_server.set_invoice("in_1", "cus_test1", "paid")  # a retry paid it first
    answer = deliver(client, event("invoice.payment_failed", invoice("cus_test1"), 100))
    assert answer.json() == {"status": "stale"}
    assert store.account(account.id).state is AccountState.ACTIVE


def test_a_failure_while_applying_lets_stripes_retry_apply_it(client, store, account,
                                                              stripe_server):
    customer_of(store, account)
    stripe_server.set_invoice("in_1", "cus_test1", "open")
    stripe_server.fail(billing.ATTEMPTS, "500")
    payload = event("invoice.payment_failed", invoice("cus_test1"), int(time.time()))
    answer = deliver(client, payload)
    assert (answer.status_code, answer.json()["error"]) == (503, "stripe_unavailable")
    assert store.account(account.id).state is AccountState.ACTIVE
    assert deliver(client, payload).json() == {"status": "applied"}  # Stripe's retry
    assert store.account(account.id).state is AccountState.PAST_DUE


@SQLITE_ONLY
def test_a_redelivery_while_the_first_applies_is_refused_then_applies(store, account,
                                                                      stripe_server):
    """Stripe may deliver an event again before the first delivery has answered. The
    second is answered 409 (Stripe retries it later), not "duplicate": the first may
    still fail, and then a later delivery must apply the event."""
    customer_of(store, account)
    stripe_server.set_invoice("in_1", "cus_test1", "open")
    stripe_server.fail(billing.ATTEMPTS, "stall")  # the first delivery's check of the invoice
    payload = event("invoice.payment_failed", invoice("cus_test1"), int(time.time()))
    with make_app(store, stripe_server, timeout=(1.0, 0.3)) as first, \
            make_app(store, stripe_server) as second, ThreadPoolExecutor(1) as pool:
        applying = pool.submit(deliver, first, payload)
        deadline = time.monotonic() + 10
        while not stripe_server.calls() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stripe_server.calls(), "the first delivery never asked Stripe"
        again = deliver(second, payload)
        assert (again.status_code, again.json()["error"]) == (409, "event_in_progress")
        failed = applying.result(timeout=30)
        assert (failed.status_code, failed.json()["error"]) == (503, "stripe_unavailable")
        assert store.account(account.id).state is AccountState.ACTIVE
        assert deliver(second, payload).json() == {"status": "applied"}  # Stripe's retry
        assert store.account(account.id).state is AccountState.PAST_DUE
        assert deliver(second, payload).json() == {"status": "duplicate"}


def test_a_deleted_subscription_falls_back_to_free(client, store, account):
    assert client.post(CHECKOUT, json={"plan": "pro", "account_id": account.id},
                       headers=AS_OWNER).status_code == 200
    customer = store.account(account.id).stripe_customer
    deliver(client, event("customer.subscription.created", subscription(customer), 100))
    store.set_billing_state(account.id, AccountState.PAST_DUE, 5_000)
    old = subscription(customer, status="canceled", sub_id="sub_old")
    assert deliver(client, event("customer.subscription.deleted", old, 150)).json() \
        == {"status": "ignored"}  # another subscription's end
    assert store.account(account.id).plan == "pro"
    gone = subscription(customer, status="canceled")
    assert deliver(client, event("customer.subscription.deleted", gone, 200)).json() \
        == {"status": "applied"}
    now = store.account(account.id)
    assert (now.plan, now.subscription_status, now.state, now.grace_until) == \
        ("free", "canceled", AccountState.ACTIVE, 0)
    assert effective_plan(now, time.time()) == "free"
    # ended, it no longer stands in the way of a new Checkout
    assert client.post(CHECKOUT, json={"plan": "pro", "account_id": account.id},
                       headers=AS_OWNER).status_code == 200


def test_a_retired_price_keeps_the_plan_paid_for(client, store, account):
    customer_of(store, account)
    deliver(client, event("customer.subscription.created", subscription("cus_test1"), 100))
    deliver(client, event("customer.subscription.updated",
                          subscription("cus_test1", price="price_legacy"), 110))
    now = store.account(account.id)
    assert (now.plan, now.subscription_at) == ("pro", 110)


@pytest.mark.parametrize("state, grace, plan", [
    (AccountState.ACTIVE, 0, "team"),
    (AccountState.PAST_DUE, 1_000, "team"),  # within grace
    (AccountState.PAST_DUE, 999, "free"),  # grace over
    (AccountState.CLOSED, 0, "free"),
])
def test_effective_plan(state, grace, plan):
    account = Account(1, "A", "a@example.org", plan="team", state=state, grace_until=grace)
    assert effective_plan(account, now=1_000) == plan
