"""Stripe billing: Checkout to subscribe, the Customer Portal to change or cancel, and
the webhook through which Stripe tells an account what it paid for.

    POST /api/v1/billing/checkout        {"plan": "pro"|"team", "account_id"?} -> {"url"}
    POST /api/v1/billing/portal          {"account_id"?}                        -> {"url"}
    POST /api/v1/billing/stripe-webhook  an event signed by Stripe              -> {"status"}

Checkout and the portal need the admin scope (cloud/auth.py checks it). The admin token
names the account; an account's key acts on its own, and another's id is a 404, as if
it did not exist. Without STRIPE_SECRET_KEY all three answer 404 billing_off: billing
is not a feature of this deployment, and no retry will change that (a 503 would invite
retries, a 501 would page whoever watches for 5xx).

Stripe's API is reached through one StripeClient per app (no module-global api_key),
its own retries off. Each call runs on the thread pool within a connect and a read
timeout and is retried by tenacity while the failure may pass (a dropped connection or
timeout, 429, 5xx), with the same Idempotency-Key each time: a retry of a call whose
answer was lost creates no second customer. A 4xx is a mistake of ours; retrying it
would fail again. Stripe's messages are scrubbed of both Stripe secrets before they are
logged, and an answer carries at most Stripe's error code.

The webhook checks the signature of the raw body first (stripe.Webhook, its default
300 s tolerance); nothing of an unsigned body is read. Each event id is applied once:
a delivery claims it, a replay of an applied event answers "duplicate", and one that
arrives while an earlier delivery is still applying answers 409, so Stripe delivers it
again; if applying fails, the claim is given up so that Stripe's retry applies it. Stripe does not promise order, so a subscription change carries its
event's time and one older than the last applied is refused ("stale"), and a failed
payment counts only if Stripe says the invoice is still open now.
"""
from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import stripe
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from cloud.auth import principal
from cloud.body import bounded_bytes, json_object
from cloud.errors import ApiError
from shared.graph.store.accounts import FREE, Account, AccountState, EventClaim
from shared.secrets import Scrubber
from shared.settings import Settings

log = logging.getLogger("cloud.billing")

# A failed payment keeps the plan this long from the failure: time for Stripe's first
# automatic retries and for the customer to update a card, not long enough for an
# unpaid plan to become a free one.
GRACE_SECONDS = 7 * 86_400
ATTEMPTS = 3  # calls to Stripe, first included
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 20.0  # Checkout sessions usually answer in well under a second
MAX_BODY = 16 * 1024
MAX_EVENT = 1024 * 1024  # Stripe's events are a few KB; this bounds what an unsigned one costs
# A delivery's claim on an event outlives the longest apply (ATTEMPTS calls within their
# timeouts, about 80 s); past it, the claim's process is taken for dead.
CLAIM_SECONDS = 300.0
# Subscription statuses that carry the plan paid for; past_due holds it through the
# grace period (effective_plan). Any other (incomplete, unpaid, canceled…) is free.
ENTITLED = frozenset({"active", "trialing", "past_due"})
# Statuses of a subscription that still bills: a second Checkout would charge twice.
LIVE = ENTITLED | {"unpaid", "paused"}
_CODE = re.compile(r"[a-z0-9_]{1,64}")
# Event times are whole seconds, and Checkout's creation (incomplete) and first update
# (active) often share one: within a second, a creation comes before any change of the
# subscription, and its deletion after (nothing revives it).
_WITHIN_SECOND = {"customer.subscription.created": -0.5, "customer.subscription.deleted": 0.5}


# --- Stripe's API --------------------------------------------------------------------

class _ScrubSdkLog(logging.Filter):
    """The SDK logs Stripe's error messages (INFO) and bodies (DEBUG) on the "stripe"
    logger; should one quote a secret (a proxy echoing the request, say), every
    handler, not only the app's (shared.secrets.scrub_logs), gets it masked."""

    def __init__(self):
        super().__init__()
        self._secrets: set[str] = set()
        self._scrub = Scrubber()

    def add(self, *secrets: str) -> None:
        self._secrets.update(s for s in secrets if s)
        self._scrub = Scrubber(self._secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self._scrub(record.getMessage()), None
        return True


_SDK_LOG = _ScrubSdkLog()
logging.getLogger("stripe").addFilter(_SDK_LOG)


def transient(exc: BaseException) -> bool:
    """Whether a failed call may succeed if made again."""
    if isinstance(exc, stripe.APIConnectionError):
        return exc.should_retry  # a timeout or dropped connection; not a TLS failure
    if isinstance(exc, stripe.RateLimitError):
        return True
    return isinstance(exc, stripe.StripeError) and (exc.http_status or 0) >= 500


class StripeApi:
    """Stripe's API with one secret key. Blocking: call it from the thread pool."""

    def __init__(self, settings: Settings, *, attempts: int = ATTEMPTS, wait=None,
                 timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT)):
        bases = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
        self.client = stripe.StripeClient(
            settings.stripe_secret_key, base_addresses=bases, max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=timeout))
        self.attempts = attempts
        self.wait = wait if wait is not None else wait_exponential_jitter(initial=0.5, max=4)
        self.scrub = Scrubber([settings.stripe_secret_key, settings.stripe_webhook_secret])
        _SDK_LOG.add(settings.stripe_secret_key, settings.stripe_webhook_secret)

    def call(self, what: str, method: Callable, *args, key: str = "") -> Any:
        """`method(*args)` of the client, retried while transient; ApiError when it fails
        for good. `key`: the Idempotency-Key of a create, the same on every attempt."""
        options = {"idempotency_key": key} if key else {}
        retrying = Retrying(stop=stop_after_attempt(self.attempts), wait=self.wait,
                            retry=retry_if_exception(transient), reraise=True,
                            before_sleep=lambda state: self._retrying(what, state))
        try:
            return retrying(method, *args, options=options)
        except stripe.StripeError as exc:
            raise self._refusal(what, exc) from None  # its message stays in the log

    def _retrying(self, what: str, state) -> None:
        log.warning("Stripe %s, attempt %d of %d: %s; retrying", what, state.attempt_number,
                    self.attempts, self.describe(state.outcome.exception()))

    def _refusal(self, what: str, exc: stripe.StripeError) -> ApiError:
        log.error("Stripe %s failed: %s", what, self.describe(exc))
        if transient(exc):
            return ApiError(503, "stripe_unavailable", f"Stripe is unreachable or busy (the "
                            f"{what} request); try again shortly", {"Retry-After": "30"})
        code = exc.code if isinstance(exc.code, str) and _CODE.fullmatch(exc.code) else ""
        return ApiError(502, "stripe_error", f"Stripe refused the {what} request"
                        f"{f' ({code})' if code else ''}; the server log has its reason")

    def describe(self, exc: BaseException) -> str:
        """What an operator needs, without any secret: class, status, Stripe's request id,
        its message scrubbed."""
        if not isinstance(exc, stripe.StripeError):
            return type(exc).__name__
        message = self.scrub(" ".join((exc.user_message or "").split()))[:300]
        return (f"{type(exc).__name__} (HTTP {exc.http_status or '-'}, request "
                f"{exc.request_id or '-'}): {message}")


def _api(request: Request) -> StripeApi:
    """The app's client, made on first use (tests put their own in app.state.stripe)."""
    state = request.app.state
    api = getattr(state, "stripe", None)
    if api is None:
        api = state.stripe = StripeApi(state.settings)
    return api


# --- Checkout and the Customer Portal --------------------------------------------------

def _billing(request: Request) -> Settings:
    settings = request.app.state.settings
    if not settings.billing:
        raise ApiError(404, "billing_off", "billing is not set up on this server "
                                           "(STRIPE_SECRET_KEY is not set)")
    return settings


async def _body(request: Request, allowed: set[str]) -> dict:
    return await json_object(request, allowed, MAX_BODY)


def _account(request: Request, body: dict) -> Account:
    """The account the caller pays for. Blocking (a read of the store)."""
    who = principal(request)
    wanted = body.get("account_id")
    if wanted is None:
        if who.owner:
            raise ApiError(400, "bad_request", "account_id is required with the admin token")
        wanted = who.account_id
    if isinstance(wanted, bool) or not isinstance(wanted, int) or not 0 < wanted < 2 ** 63:
        raise ApiError(400, "bad_request", "account_id must be a positive integer")
    account = request.app.state.query.store.account(wanted) \
        if who.owner or wanted == who.account_id else None
    if account is None:
        raise ApiError(404, "not_found", f"no account with id {wanted}")
    return account


def _return_base(request: Request, settings: Settings) -> str:
    # PUBLIC_URL, or where this request came in (right unless behind a proxy that
    # rewrites the host)
    return settings.public_url or str(request.base_url).rstrip("/")


async def checkout(request: Request) -> JSONResponse:
    settings = _billing(request)
    body = await _body(request, {"plan", "account_id"})
    prices = dict(settings.stripe_prices)
    if not prices:
        raise ApiError(404, "billing_off", "no plan is for sale on this server "
                                           "(no STRIPE_PRICE_<PLAN> is set)")
    plan = body.get("plan")
    if not isinstance(plan, str) or plan not in prices:
        raise ApiError(400, "bad_request", f"plan must be one of {', '.join(prices)}")
    url = await run_in_threadpool(_checkout, request, _api(request), body, prices[plan],
                                  _return_base(request, settings))
    return JSONResponse({"url": url})


def _checkout(request: Request, api: StripeApi, body: dict, price: str, base: str) -> str:
    account = _account(request, body)
    if account.state is AccountState.CLOSED:
        raise ApiError(409, "account_closed", f"account {account.id} is closed")
    if account.subscription_status in LIVE:
        raise ApiError(409, "already_subscribed", f"account {account.id} has a subscription "
                       f"({account.subscription_status}); change or cancel it in the billing "
                       "portal (POST /api/v1/billing/portal)")
    customer = account.stripe_customer or _new_customer(request.app.state.query.store, api,
                                                        account)
    session = api.call("checkout", api.client.v1.checkout.sessions.create, {
        "mode": "subscription", "customer": customer,
        "client_reference_id": str(account.id),
        "line_items": [{"price": price, "quantity": 1}],
        "subscription_data": {"metadata": {"account_id": str(account.id)}},
        "success_url": f"{base}/?billing=success&session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{base}/?billing=cancelled",
    }, key=f"na-checkout-{uuid.uuid4().hex}")
    return session.url


def _new_customer(store, api: StripeApi, account: Account) -> str:
    """The account's Stripe customer, created and stored before any Checkout, so that
    every event about it finds the account by its customer id."""
    # The same key for the same account: two checkouts at once, or a retry after the
    # answer was lost, get one customer. created_at tells apart an account id reused
    # by a fresh database talking to the same Stripe account.
    key = f"na-customer-{account.id}-{int(account.created_at * 1000)}"
    customer = api.call("customer", api.client.v1.customers.create, {
        "email": account.email, "name": account.name,
        "metadata": {"account_id": str(account.id)}}, key=key)
    store.set_customer(account.id, customer.id)
    return customer.id


async def portal(request: Request) -> JSONResponse:
    settings = _billing(request)
    body = await _body(request, {"account_id"})
    url = await run_in_threadpool(_portal, request, _api(request), body,
                                  _return_base(request, settings))
    return JSONResponse({"url": url})


def _portal(request: Request, api: StripeApi, body: dict, base: str) -> str:
    account = _account(request, body)
    if not account.stripe_customer:
        raise ApiError(400, "no_customer", f"account {account.id} has never subscribed; "
                       "start with POST /api/v1/billing/checkout")
    session = api.call("portal", api.client.v1.billing_portal.sessions.create, {
        "customer": account.stripe_customer, "return_url": f"{base}/"},
        key=f"na-portal-{uuid.uuid4().hex}")
    return session.url


# --- the webhook ----------------------------------------------------------------------

@dataclass(frozen=True)
class Events:
    """What applying an event needs."""
    store: Any  # the graph store (AccountsMixin)
    api: StripeApi
    plans: dict[str, str]  # Stripe price id -> plan name


async def stripe_webhook(request: Request) -> JSONResponse:
    settings = _billing(request)
    event = verified(await _raw(request), request.headers.get("stripe-signature"),
                     settings.stripe_webhook_secret)
    events = Events(request.app.state.query.store, _api(request),
                    {price: plan for plan, price in settings.stripe_prices})
    return JSONResponse(await run_in_threadpool(receive, events, event))


async def _raw(request: Request) -> bytes:
    return await bounded_bytes(request, MAX_EVENT, "a Stripe event")


def verified(payload: bytes, signature: str | None, secret: str) -> dict:
    """The event, as plain JSON, if Stripe signed this body within the tolerance."""
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret)
    except stripe.SignatureVerificationError:
        raise ApiError(400, "bad_signature", "the Stripe-Signature header is missing, does "
                       "not verify, or is older than "
                       f"{stripe.Webhook.DEFAULT_TOLERANCE} s") from None
    except ValueError:  # signed, yet not JSON: not from Stripe's servers
        raise ApiError(400, "bad_request", "the event is not valid JSON") from None
    event = event.to_dict()
    data = event.get("data")
    if not (isinstance(event.get("id"), str) and isinstance(event.get("type"), str)
            and isinstance(event.get("created"), (int, float)) and isinstance(data, dict)
            and isinstance(data.get("object"), dict)):
        raise ApiError(400, "bad_request", "the event lacks id, type, created or data.object")
    return event


def receive(events: Events, event: dict) -> dict:
    """Apply a verified event once. Blocking."""
    apply = HANDLERS.get(event["type"])
    if apply is None:
        return {"status": "ignored"}
    claim, claimed_at = events.store.claim_stripe_event(event["id"], CLAIM_SECONDS)
    if claim is EventClaim.APPLIED:
        return {"status": "duplicate"}
    if claim is EventClaim.APPLYING:  # not a 2xx: Stripe delivers it again later
        raise ApiError(409, "event_in_progress", "this event is being applied by an "
                       "earlier delivery; if that one fails, the next delivery applies it")
    try:
        status = apply(events, event)
    except Exception:
        events.store.forget_stripe_event(event["id"], claimed_at)  # Stripe's retry applies it
        raise
    events.store.applied_stripe_event(event["id"])
    log.info("Stripe event %s (%s): %s", event["id"], event["type"], status)
    return {"status": status}


def _customer_account(store, obj: dict) -> Account | None:
    customer = obj.get("customer")
    return store.account_by_customer(customer) if isinstance(customer, str) and customer \
        else None


def _checkout_completed(events: Events, event: dict) -> str:
    """The customer was stored when Checkout began; link it here if that write was
    lost, never replacing another (it may carry a live subscription)."""
    session = event["data"]["object"]
    ref, customer = session.get("client_reference_id"), session.get("customer")
    account = events.store.account(int(ref)) \
        if isinstance(ref, str) and ref.isdigit() and len(ref) < 19 else None
    if account is None or not isinstance(customer, str) or not customer:
        return "ignored"
    if account.stripe_customer and account.stripe_customer != customer:
        log.warning("Checkout for account %d paid as customer %s, but the account is "
                    "customer %s; left as it is", account.id, customer, account.stripe_customer)
        return "ignored"
    if not account.stripe_customer:
        events.store.set_customer(account.id, customer)
    return "applied"


def _subscription_changed(events: Events, event: dict) -> str:
    sub = event["data"]["object"]
    account = _customer_account(events.store, sub)
    if account is None or not isinstance(sub.get("id"), str):
        return "ignored"
    status = str(sub.get("status") or "")
    deleted = event["type"] == "customer.subscription.deleted"
    other = account.subscription_id and account.subscription_id != sub["id"]
    if other and (deleted or status not in LIVE):
        return "ignored"  # an old subscription ending: the account's current one stands
    plan = FREE if deleted or status not in ENTITLED else _plan(events, sub, account)
    at = float(event["created"]) + _WITHIN_SECOND.get(event["type"], 0.0)
    if not events.store.apply_subscription(account.id, sub["id"], status, plan, at):
        return "stale"
    if deleted:  # nothing is owed any more: no grace period left to run out
        events.store.set_billing_state(account.id, AccountState.ACTIVE, 0.0)
    return "applied"


def _plan(events: Events, sub: dict, account: Account) -> str:
    items = (sub.get("items") or {}).get("data") or []
    prices = [(item.get("price") or {}).get("id") for item in items if isinstance(item, dict)]
    plan = next((events.plans[p] for p in prices if p in events.plans), None)
    if plan is None:  # a price retired from STRIPE_PRICE_*: do not take away what was paid
        log.warning("subscription %s has no price of a STRIPE_PRICE_<PLAN> setting "
                    "(%s); account %d keeps plan %s", sub["id"], prices, account.id, account.plan)
        return account.plan
    return plan


def _invoice_paid(events: Events, event: dict) -> str:
    account = _customer_account(events.store, event["data"]["object"])
    if account is None:
        return "ignored"
    changed = events.store.set_billing_state(account.id, AccountState.ACTIVE, 0.0)
    return "applied" if changed else "ignored"


def _payment_failed(events: Events, event: dict) -> str:
    invoice = event["data"]["object"]
    account = _customer_account(events.store, invoice)
    if account is None or not isinstance(invoice.get("id"), str):
        return "ignored"
    # The event may arrive after the one saying a retry paid it: ask Stripe how it is now.
    now = events.api.call("invoice", events.api.client.v1.invoices.retrieve, invoice["id"])
    if now.status != "open":
        return "stale"
    if account.state is AccountState.PAST_DUE and account.grace_until:
        return "applied"  # a retry failed again: the grace period runs from the first
    grace = float(event["created"]) + GRACE_SECONDS
    changed = events.store.set_billing_state(account.id, AccountState.PAST_DUE, grace)
    return "applied" if changed else "ignored"


HANDLERS: dict[str, Callable[[Events, dict], str]] = {
    "checkout.session.completed": _checkout_completed,
    "customer.subscription.created": _subscription_changed,
    "customer.subscription.updated": _subscription_changed,
    "customer.subscription.deleted": _subscription_changed,
    "invoice.paid": _invoice_paid,
    "invoice.payment_failed": _payment_failed,
}
