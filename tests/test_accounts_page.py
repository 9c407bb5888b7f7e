"""The page's Account tab (cloud/static/index.html): plan, limits, usage, API keys and
billing, in a real headless Chromium.

Everything is real: the control plane app under uvicorn on loopback, its accounts and
keys in a SQLite graph store, the plans' counters in its SQLite queue, Qdrant local
mode, and billing through the real `stripe` SDK against the local stand-in of Stripe's
API (tests/stripe_server.py). Usage is made through the API with an account's key
(ingests, questions); chunks embedded are metered as the worker meters them (the
queue's Limiter, edge/__main__.py). A subscription arrives as Stripe sends it: a signed
webhook. The page's requests reach the app unchanged; only the browser's navigation to
Stripe's own pages (Checkout, the portal) is intercepted (page.route) to read where it
went without leaving loopback.
The browser, the live server and the `page` fixture come from tests/test_status_page.py.
"""
from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from shared.graph.store import SqliteGraphStore
from shared.limits import Limiter
from shared.queue.sqlite import SqliteQueue
from shared.settings import Settings
from tests.servers import free_port
from tests.stripe_server import StripeServer
from tests.test_billing import event, sign, subscription
from tests.test_repos_page import served, stores  # noqa: F401 - stores: a fixture
from tests.test_status_page import (  # noqa: F401 - page is a fixture used here
    LOOPBACK,
    TOKEN,
    WAIT_MS,
    LiveServer,
    page,
)

SCREENSHOTS = Path("/tmp")
SECRET_KEY = "sk_test_" + secrets.token_hex(24)
WEBHOOK_SECRET = "whsec_" + secrets.token_hex(16)
PRICES = (("pro", "price_pro_page"), ("team", "price_team_page"))
CHECKOUT_PAGES = "https://checkout.stripe.com/**"
PORTAL_PAGES = "https://billing.stripe.com/**"
ALL_SCOPES = ["read", "ingest", "admin"]


# ---------------------------------------------------------------------------
# The control plane, with or without billing
# ---------------------------------------------------------------------------


@dataclass
class World:
    store: SqliteGraphStore
    queue: SqliteQueue
    http: httpx.Client  # the admin token's
    url: str

    def account(self, name: str, plan: str = "free") -> int:
        made = self.http.post("/api/v1/accounts", json={
            "name": name, "email": f"{name.lower().replace(' ', '-')}@example.org", "plan": plan})
        assert made.status_code == 201, made.text
        return made.json()["id"]

    def key(self, account_id: int, scopes: list[str], name: str = "console") -> dict:
        made = self.http.post(f"/api/v1/accounts/{account_id}/keys",
                              json={"name": name, "scopes": scopes})
        assert made.status_code == 201, made.text
        return made.json()

    def as_key(self, secret: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {secret}"},
                            trust_env=False, timeout=30)

    def who(self, secret: str) -> httpx.Response:
        with self.as_key(secret) as client:
            return client.get("/api/v1/accounts/me")


@pytest.fixture
def billing() -> bool:
    """Billing on (Stripe's stand-in); a test turns it off with parametrize."""
    return True


@pytest.fixture
def plans() -> tuple[str, tuple]:
    """(PLANS, the Stripe prices): the default plans; a test adds one with parametrize."""
    return "", PRICES


@pytest.fixture
def stripe_server() -> Iterator[StripeServer]:
    server = StripeServer(SECRET_KEY)
    yield server
    server.stop()


@pytest.fixture
def server(stores, tmp_path: Path, billing: bool, plans: tuple[str, tuple],
           stripe_server: StripeServer) -> Iterator[LiveServer]:
    """Overrides test_status_page's `server` for its `page` fixture. Its port is chosen
    first so that PUBLIC_URL (where Checkout sends the browser back) is this server."""
    port = free_port()
    stripe = dict(stripe_secret_key=SECRET_KEY, stripe_webhook_secret=WEBHOOK_SECRET,
                  stripe_prices=plans[1], stripe_api_base=stripe_server.url,
                  public_url=f"http://{LOOPBACK}:{port}") if billing else {}
    settings = Settings(admin_token=TOKEN, data_dir=tmp_path / "cp", plans_json=plans[0],
                        **stripe)
    with served(stores, settings, port) as live:
        yield live


@pytest.fixture
def world(stores, server: LiveServer) -> Iterator[World]:
    store, _, queue = stores
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"},
                      trust_env=False, timeout=30) as client:
        yield World(store, queue, client, server.url)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def sign_in(page: Page, token: str) -> None:
    """With the admin token or an API key, from the sign-in form."""
    if not page.locator("#login-view").is_visible():
        page.goto("/")
    page.fill("#token", token)
    page.click("#login")
    expect(page.locator("#tabs")).to_be_visible(timeout=WAIT_MS)


def open_account(page: Page) -> None:
    page.click('#tabs a[data-tab="account"]')
    expect(page.locator("#account-view")).to_be_visible()
    expect(page.locator('#tabs a[data-tab="account"]')).to_have_attribute("aria-current", "page")


def field(root, name: str):
    return root.locator(f'[data-field="{name}"]')


def limit_row(page: Page, limit: str):
    return page.locator(f'#limits tr[data-limit="{limit}"]')


def key_row(page: Page, key_id: int):
    return page.locator(f'#keys tr[data-key-id="{key_id}"]')


def number(value: int) -> re.Pattern:
    """A whole number as the browser's locale writes it (170,000 / 170.000 / 170 000)."""
    digits = f"{value:,}".replace(",", r"[,.\s\u202f]?")
    return re.compile(rf"^{digits}$")


def create_key(page: Page, account_id: int, name: str, scopes: list[str]) -> dict:
    """Fill the Create key form and send it; the API's answer (with the secret)."""
    page.fill("#key-name", name)
    for scope in ALL_SCOPES:
        box = page.locator(f'#key-scopes input[value="{scope}"]')
        if box.is_enabled():
            box.set_checked(scope in scopes)
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith(
            f"/api/v1/accounts/{account_id}/keys"), timeout=WAIT_MS) as made:
        page.click("#key-create")
    assert made.value.status == 201, made.value.text()
    return made.value.json()


def everything_on_the_page(page: Page) -> str:
    """The markup (attributes included) and every form field's current value."""
    return page.evaluate("""() => document.documentElement.outerHTML + "\\n" +
        [...document.querySelectorAll("input, textarea")].map((node) => node.value).join("\\n")""")


def stripe_page(opened: list[str]):
    """A page.route handler standing in for Stripe's own page: records the URL the
    browser was sent to and answers a small page, without leaving loopback."""
    def handle(route: Route) -> None:
        opened.append(route.request.url)
        route.fulfill(status=200, content_type="text/html",
                      body="<!doctype html><title>Stripe stand-in</title><p>Stripe</p>")
    return handle


def record_answers(page: Page, path: str) -> list[tuple[dict, dict]]:
    """(request body, answer) of each call the page makes to `path`, passed on to the app
    and back unchanged: the page navigates away at once, after which the browser no
    longer has the answer's body to read."""
    seen: list[tuple[dict, dict]] = []

    def handle(route: Route) -> None:
        answer = route.fetch()
        seen.append((route.request.post_data_json, answer.json()))
        route.fulfill(response=answer)
    page.route(f"**{path}", handle)
    return seen


def deliver_subscription(world: World, customer: str, price: str) -> None:
    """Stripe's webhook for a new active subscription, signed as Stripe signs it."""
    payload = event("customer.subscription.created", subscription(customer, "active", price),
                    int(time.time()))
    answer = world.http.post("/api/v1/billing/stripe-webhook", content=payload,
                             headers={"Content-Type": "application/json",
                                      "Stripe-Signature": sign(payload, WEBHOOK_SECRET)})
    assert answer.status_code == 200 and answer.json()["status"] == "applied", answer.text


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


def test_a_keys_account_view_shows_its_plan_limits_and_usage(page: Page, world: World):
    octo = world.account("Octo Ltd")
    secret = world.key(octo, ALL_SCOPES, "dashboard")["key"]
    with world.as_key(secret) as client:  # usage, made the way a customer makes it
        for n in (1, 2, 3):  # three repositories: all the free plan allows
            answer = client.post(f"/api/v1/ingestion/ingest/github.com/octo/r{n}")
            assert answer.status_code == 200, answer.text
        for _ in range(4):  # each question counts, whatever it answers
            assert client.post("/api/v1/search", json={"query": "retry a request",
                                                       "mode": "keyword"}).status_code != 429
    limiter = Limiter.for_queue(world.queue)  # the worker meters the chunks it embeds
    try:
        limiter.add(str(octo), "embeddings", 170_000)  # 85% of the free plan's month
    finally:
        limiter.close()
    with world.as_key(secret) as client:
        usage = client.get("/api/v1/usage").json()
    today = usage["days"][-1]
    assert (today["ingests"], today["queries"], today["embeddings"]) == (3, 4, 170_000)

    sign_in(page, secret)
    open_account(page)
    expect(page.locator("#account-title")).to_have_text("Your account", timeout=WAIT_MS)
    expect(page.locator("#accounts-panel")).to_be_hidden()  # the owner's list only
    facts = page.locator("#account-facts")
    expect(field(facts, "name")).to_have_text("Octo Ltd")
    expect(field(facts, "plan")).to_have_text("free")
    expect(field(facts, "state")).to_have_text("active")
    expect(field(facts, "subscription")).to_have_text("none")
    expect(field(facts, "grace")).to_have_count(0)  # not past due
    expect(page.locator("#usage-plan")).to_have_text("limits of the free plan")

    repos = limit_row(page, "repositories")
    expect(field(repos, "used")).to_have_text("3", timeout=WAIT_MS)
    expect(field(repos, "allowed")).to_have_text("3 at once")
    expect(repos).to_have_attribute("data-level", "full")
    expect(field(repos, "level")).to_contain_text("limit reached")
    ingests = limit_row(page, "ingests")
    expect(field(ingests, "used")).to_have_text("3")
    expect(field(ingests, "allowed")).to_have_text("20 a day")
    expect(ingests).to_have_attribute("data-level", "ok")
    queries = limit_row(page, "queries")
    expect(field(queries, "used")).to_have_text("4")
    expect(field(queries, "allowed")).to_have_text("60 a minute")
    embeddings = limit_row(page, "embeddings")
    expect(field(embeddings, "used")).to_have_text(number(170_000))
    expect(field(embeddings, "allowed")).to_have_text(re.compile(r"^200[,.\s\u202f]?000 a month$"))
    expect(embeddings).to_have_attribute("data-level", "near")
    expect(field(embeddings, "level")).to_contain_text("near the limit")
    expect(page.locator("#limits .badge")).to_have_count(2)  # nothing else is highlighted

    for period in ("today", "total"):
        row = page.locator(f'#usage tr[data-period="{period}"]')
        expect(field(row, "ingests")).to_have_text("3")
        expect(field(row, "queries")).to_have_text("4")
        expect(field(row, "embeddings")).to_have_text(number(170_000))
    expect(page.locator('#usage tr[data-period="today"] td').first).to_contain_text(today["day"])
    expect(page.locator('#usage tr[data-period="total"] td').first).to_have_text("Last 30 days")
    page.click("#usage-days summary")
    expect(page.locator("#usage-days-table tbody tr")).to_have_count(1)
    expect(page.locator(f'#usage-days-table tr[data-day="{today["day"]}"]')).to_be_visible()

    # billing is on and the plan is free: both plans above it are offered
    expect(page.locator("#billing-buttons button[data-action=upgrade]")).to_have_text(
        ["Upgrade to Pro", "Upgrade to Team"])
    expect(page.locator("#billing-buttons button[data-action=portal]")).to_have_count(0)
    page.screenshot(path=str(SCREENSHOTS / "accounts_page_key.png"), full_page=True)


def test_a_new_key_is_shown_once_works_and_leaves_the_page(page: Page, world: World):
    octo = world.account("Octo")
    admin = world.key(octo, ALL_SCOPES, "console")
    urls: list[str] = []
    console: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.on("console", lambda message: console.append(message.text))
    sign_in(page, admin["key"])
    open_account(page)
    expect(page.locator("#keys tbody tr")).to_have_count(1, timeout=WAIT_MS)
    expect(field(key_row(page, admin["id"]), "name")).to_contain_text("signed in with it")

    made = create_key(page, octo, "ci", ["read", "ingest"])
    secret = made["key"]
    assert secret.startswith("na_live_")
    box = page.locator("#new-key")
    expect(box).to_be_visible()
    expect(page.locator("#new-key-secret")).to_have_value(secret)
    expect(page.locator("#new-key-secret")).to_be_focused()
    expect(box).to_contain_text("Copy it now: you will not see it again.")
    row = page.locator(f'#keys tr[data-prefix="{secret[:16]}"]')
    expect(row).to_have_count(1, timeout=WAIT_MS)
    expect(field(row, "name")).to_have_text("ci")
    expect(field(row, "scopes")).to_have_text("ingestread")
    expect(field(row, "last-used")).to_have_text("never")
    expect(field(row, "state")).to_have_text("live")
    assert secret not in page.content()  # a field's value, never markup or an attribute

    me = world.who(secret)  # the key works, with what was chosen
    assert me.status_code == 200, me.text
    assert me.json()["account"]["id"] == octo and me.json()["scopes"] == ["ingest", "read"]

    # making another key takes the first one's secret away at once, before any answer
    held: list[Route] = []
    page.route("**/api/v1/accounts/*/keys", lambda route: held.append(route)
               if route.request.method == "POST" else route.continue_())
    page.fill("#key-name", "deploy")
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith(
            f"/api/v1/accounts/{octo}/keys"), timeout=WAIT_MS) as made:
        page.click("#key-create")
        deadline = time.monotonic() + WAIT_MS / 1000
        while not held and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        assert held, "the page sent no POST"
        expect(box).to_be_hidden()
        assert secret not in everything_on_the_page(page)
        held[0].continue_()
    second = made.value.json()
    expect(page.locator("#new-key-secret")).to_have_value(second["key"])
    assert secret not in everything_on_the_page(page)

    page.click('#tabs a[data-tab="status"]')  # leaving the tab takes the secret away
    expect(box).to_be_hidden()
    assert second["key"] not in everything_on_the_page(page)
    open_account(page)
    expect(page.locator("#keys tbody tr")).to_have_count(3, timeout=WAIT_MS)
    expect(box).to_be_hidden()
    assert second["key"] not in everything_on_the_page(page)

    stored = page.evaluate("() => JSON.stringify([{...localStorage}, {...sessionStorage}])")
    seen = "\n".join([*urls, page.url, stored, *console])
    assert secret not in seen and second["key"] not in seen
    assert page.evaluate("() => localStorage.length") == 0


def test_revoke_asks_first_then_the_key_is_refused(page: Page, world: World):
    octo = world.account("Octo")
    admin = world.key(octo, ALL_SCOPES, "console")["key"]
    victim = world.key(octo, ["read"], "old-ci")
    deletes: list[str] = []
    page.on("request", lambda request: deletes.append(request.url)
            if request.method == "DELETE" else None)
    sign_in(page, admin)
    open_account(page)
    row = key_row(page, victim["id"])
    button = row.locator('button[data-action="revoke"]')
    expect(button).to_have_text("Revoke", timeout=WAIT_MS)

    button.click()  # the first press only asks
    expect(button).to_have_text("Revoke for good?")
    expect(field(row, "revoke-note")).to_contain_text("old-ci is refused from its next request")
    page.keyboard.press("Escape")  # and it can be taken back
    expect(button).to_have_text("Revoke")
    expect(field(row, "revoke-note")).to_be_hidden()
    page.wait_for_timeout(300)
    assert deletes == [] and world.who(victim["key"]).status_code == 200

    button.click()
    expect(button).to_have_text("Revoke for good?")
    with page.expect_response(lambda r: r.request.method == "DELETE", timeout=WAIT_MS) as done:
        button.click()
    assert done.value.status == 200 and done.value.json()["revoked"] == victim["id"]
    assert deletes == [f"{world.url}/api/v1/keys/{victim['id']}"]
    expect(field(row, "state")).to_have_text("revoked", timeout=WAIT_MS)
    expect(row).to_have_attribute("data-revoked", "true")
    expect(row.locator("button")).to_have_count(0)
    expect(page.locator("#keys-message")).to_contain_text("Revoked old-ci")
    expect(page.locator("#keys-message")).to_be_focused()
    assert world.who(victim["key"]).status_code == 401
    assert world.who(admin).status_code == 200  # only that one
    expect(page.locator("#keys-count")).to_have_text("1 live, 1 revoked")


def test_the_owner_creates_an_account_and_manages_its_keys(page: Page, world: World):
    initech = world.account("Initech", plan="team")
    bot = world.key(initech, ["read"], "initech-bot")
    sign_in(page, TOKEN)
    open_account(page)
    expect(page.locator("#accounts tbody tr")).to_have_count(1, timeout=WAIT_MS)
    expect(page.locator("#account-panel")).to_be_hidden()  # until one is chosen

    page.fill("#account-name", "Octo")
    page.fill("#account-email", "ops@octo.example")
    page.fill("#account-plan", "pro")
    with page.expect_response(lambda r: r.request.method == "POST"
                              and r.url.endswith("/api/v1/accounts"), timeout=WAIT_MS) as made:
        page.click("#account-create")
    assert made.value.status == 201, made.value.text()
    octo = made.value.json()["id"]
    expect(page.locator("#accounts-message")).to_contain_text("Created Octo")
    expect(page.locator("#accounts tbody tr")).to_have_count(2)
    listed = page.locator(f'#accounts tr[data-account-id="{octo}"]')
    expect(listed).to_have_attribute("aria-current", "true")  # and it is open
    expect(field(listed, "email")).to_have_text("ops@octo.example")
    expect(page.locator("#account-title")).to_have_text("Account: Octo")
    expect(field(page.locator("#account-facts"), "plan")).to_have_text("pro")
    # the usage asked for is this account's: the pro plan's limits
    expect(field(limit_row(page, "ingests"), "allowed")).to_have_text("200 a day", timeout=WAIT_MS)
    expect(field(limit_row(page, "repositories"), "allowed")).to_have_text("30 at once")
    expect(page.locator("#billing-buttons button[data-action=upgrade]")).to_have_text(
        ["Upgrade to Team"])  # only the plan above pro
    expect(page.locator("#no-keys")).to_be_visible()

    made_key = create_key(page, octo, "deploy", ["read", "admin"])
    expect(page.locator("#new-key-secret")).to_have_value(made_key["key"])
    me = world.who(made_key["key"])
    assert me.status_code == 200 and me.json()["account"]["id"] == octo
    expect(page.locator("#keys tbody tr")).to_have_count(1, timeout=WAIT_MS)

    page.click(f'#accounts button[data-open-account="{initech}"]')  # another account
    expect(page.locator("#account-title")).to_have_text("Account: Initech")
    expect(page.locator("#new-key")).to_be_hidden()
    assert made_key["key"] not in everything_on_the_page(page)
    expect(page.locator("#keys tbody tr")).to_have_count(1, timeout=WAIT_MS)
    expect(field(key_row(page, bot["id"]), "name")).to_have_text("initech-bot")
    expect(field(limit_row(page, "ingests"), "allowed")).to_have_text(re.compile(r"^1[,.\s\u202f]?000 a day$"))
    expect(page.locator("#billing-buttons button[data-action=upgrade]")).to_have_count(0)

    page.click(f'#accounts button[data-open-account="{octo}"]')
    row = key_row(page, made_key["id"])
    expect(row).to_be_visible(timeout=WAIT_MS)
    row.locator('button[data-action="revoke"]').click()
    row.locator('button[data-action="revoke"]').click()
    expect(field(row, "state")).to_have_text("revoked", timeout=WAIT_MS)
    assert world.who(made_key["key"]).status_code == 401
    assert world.who(bot["key"]).status_code == 200
    page.screenshot(path=str(SCREENSHOTS / "accounts_page_owner.png"), full_page=True)


def test_upgrade_opens_stripes_checkout_for_the_plan_chosen(page: Page, world: World,
                                                            stripe_server: StripeServer):
    octo = world.account("Octo")
    admin = world.key(octo, ALL_SCOPES, "console")["key"]
    opened: list[str] = []
    page.route(CHECKOUT_PAGES, stripe_page(opened))
    sign_in(page, admin)
    open_account(page)
    calls = record_answers(page, "/api/v1/billing/checkout")
    team = page.locator('#billing-buttons button[data-plan="team"]')
    expect(team).to_be_visible(timeout=WAIT_MS)
    team.click()
    page.wait_for_url(re.compile(r"^https://checkout\.stripe\.com/"), timeout=WAIT_MS)
    [(sent, answer)] = calls
    assert sent == {"plan": "team"}  # a key pays for its own account
    url = answer["url"]
    assert url.startswith("https://checkout.stripe.com/c/pay/cs_test_")
    assert opened == [url] and page.url == url
    [session] = stripe_server.calls("/v1/checkout/sessions")
    assert session.form["line_items[0][price]"] == "price_team_page"
    assert session.form["client_reference_id"] == str(octo)
    success = session.form["success_url"]
    assert success == f"{world.url}/?billing=success&session_id={{CHECKOUT_SESSION_ID}}"

    # Stripe sends the browser back with the session's id
    page.goto(success.replace("{CHECKOUT_SESSION_ID}", url.rsplit("/", 1)[1]))
    expect(page.locator("#billing-notice")).to_contain_text("Checkout complete", timeout=WAIT_MS)
    expect(page).to_have_url(f"{world.url}/#account")
    # Checkout made the account a Stripe customer: its portal is offered now
    expect(page.locator("#billing-buttons button[data-action=portal]")).to_have_text(
        "Manage billing", timeout=WAIT_MS)


def test_the_owner_pays_for_the_account_chosen_and_manages_its_subscription(
        page: Page, world: World, stripe_server: StripeServer):
    world.account("Initech")
    octo = world.account("Octo")
    opened: list[str] = []
    page.route(CHECKOUT_PAGES, stripe_page(opened))
    page.route(PORTAL_PAGES, stripe_page(opened))
    sign_in(page, TOKEN)
    open_account(page)
    page.click(f'#accounts button[data-open-account="{octo}"]', timeout=WAIT_MS)
    checkouts = record_answers(page, "/api/v1/billing/checkout")
    portals = record_answers(page, "/api/v1/billing/portal")
    page.click('#billing-buttons button[data-plan="pro"]')
    page.wait_for_url(re.compile(r"^https://checkout\.stripe\.com/"), timeout=WAIT_MS)
    [(sent, answer)] = checkouts
    assert sent == {"plan": "pro", "account_id": octo}
    assert opened == [answer["url"]]
    [session] = stripe_server.calls("/v1/checkout/sessions")
    assert session.form["line_items[0][price]"] == "price_pro_page"
    assert session.form["client_reference_id"] == str(octo)

    customer = world.store.account(octo).stripe_customer
    deliver_subscription(world, customer, "price_pro_page")  # the customer paid
    page.goto("/?billing=success&session_id=cs_test_done")
    page.click(f'#accounts button[data-open-account="{octo}"]', timeout=WAIT_MS)
    facts = page.locator("#account-facts")
    expect(field(facts, "plan")).to_have_text("pro")
    expect(field(facts, "subscription")).to_have_text("active")
    # subscribed: the plan changes in the portal, not in a second Checkout
    expect(page.locator("#billing-buttons button[data-action=upgrade]")).to_have_count(0)
    expect(page.locator("#billing-text")).to_contain_text("change or cancel the plan in Manage billing")
    page.click("#billing-buttons button[data-action=portal]")
    page.wait_for_url(re.compile(r"^https://billing\.stripe\.com/"), timeout=WAIT_MS)
    [(sent, answer)] = portals
    assert sent == {"account_id": octo}
    url = answer["url"]
    assert url.startswith("https://billing.stripe.com/p/session/")
    assert opened[-1] == url and page.url == url
    [portal] = stripe_server.calls("/v1/billing_portal/sessions")
    assert portal.form["customer"] == customer
    assert portal.form["return_url"] == f"{world.url}/"


STARTER = json.dumps({"starter": {"repositories": 10, "ingests_per_day": 50,
                                  "queries_per_minute": 120, "embeddings_per_month": 500_000}})


@pytest.mark.parametrize("plans", [(STARTER, PRICES + (("starter", "price_starter_page"),))])
def test_a_plan_added_by_plans_is_sold_in_its_place(page: Page, world: World, plans,
                                                    stripe_server: StripeServer):
    octo = world.account("Octo")
    admin = world.key(octo, ALL_SCOPES, "console")["key"]
    sign_in(page, admin)
    open_account(page)
    expect(page.locator("#billing-buttons button[data-action=upgrade]")).to_have_text(
        ["Upgrade to Starter", "Upgrade to Pro", "Upgrade to Team"], timeout=WAIT_MS)
    with world.as_key(admin) as client:
        assert client.post("/api/v1/billing/checkout", json={"plan": "starter"}).status_code == 200
    [session] = stripe_server.calls("/v1/checkout/sessions")
    assert session.form["line_items[0][price]"] == "price_starter_page"
    page.click("#signout")
    sign_in(page, TOKEN)
    open_account(page)
    expect(page.locator("#accounts tbody tr")).to_have_count(1, timeout=WAIT_MS)
    options = page.locator("#plan-names option")
    expect(options).to_have_count(4)  # the new-account form suggests every plan, smallest first
    assert [options.nth(i).get_attribute("value") for i in range(4)] == [
        "free", "starter", "pro", "team"]


@pytest.mark.parametrize("billing", [False])
def test_without_billing_no_upgrade_is_offered(page: Page, world: World, billing: bool):
    octo = world.account("Octo")
    admin = world.key(octo, ALL_SCOPES, "console")["key"]
    with world.as_key(admin) as client:  # the API agrees
        refused = client.post("/api/v1/billing/checkout", json={"plan": "pro"})
    assert (refused.status_code, refused.json()["error"]) == (404, "billing_off")
    for token in (admin, TOKEN):
        sign_in(page, token)
        open_account(page)
        if token == TOKEN:
            page.click(f'#accounts button[data-open-account="{octo}"]', timeout=WAIT_MS)
        expect(field(page.locator("#account-facts"), "plan")).to_have_text("free", timeout=WAIT_MS)
        expect(page.locator("#billing-text")).to_have_text(
            "Billing is not configured on this server: plans cannot be bought or changed here.")
        expect(page.locator("#billing-buttons button")).to_have_count(0)
        page.click("#signout")
        expect(page.locator("#login-view")).to_be_visible()


@pytest.mark.parametrize("query, says", [
    ("?billing=success&session_id=cs_test_a1b2c3", "Checkout complete: thank you."),
    ("?billing=cancelled", "Checkout was cancelled: nothing was charged"),
])
def test_the_return_from_checkout_shows_a_notice_and_cleans_the_address(
        page: Page, world: World, query: str, says: str):
    octo = world.account("Octo")
    admin = world.key(octo, ALL_SCOPES, "console")["key"]
    page.goto("/" + query)  # signed out: the notice waits for the sign-in
    expect(page).to_have_url(f"{world.url}/#account")
    expect(page.locator("#login-view")).to_be_visible()
    sign_in(page, admin)
    expect(page.locator('#tabs a[data-tab="account"]')).to_have_attribute("aria-current", "page")
    notice = page.locator("#billing-notice")
    expect(notice).to_contain_text(says, timeout=WAIT_MS)
    expect(notice).to_be_focused()
    expect(field(page.locator("#account-facts"), "name")).to_have_text("Octo", timeout=WAIT_MS)
    assert page.evaluate("() => location.search") == ""
    page.click('#tabs a[data-tab="status"]')  # it was said once
    open_account(page)
    expect(notice).to_be_hidden()

    page.goto("/" + query)  # signed in: straight to the tab
    expect(notice).to_contain_text(says, timeout=WAIT_MS)
    expect(page).to_have_url(f"{world.url}/#account")
    page.go_back()  # the address with the query was replaced, not kept in the history
    assert "billing=" not in page.url


def test_a_key_without_a_scope_is_told_so_in_the_apis_words(page: Page, world: World):
    octo = world.account("Octo")
    reader = world.key(octo, ["read"], "reader")["key"]
    with world.as_key(reader) as client:
        refused = client.get(f"/api/v1/accounts/{octo}/keys")
    assert refused.status_code == 403
    detail = refused.json()["detail"]  # this key lacks the 'admin' scope

    sign_in(page, reader)
    open_account(page)
    expect(field(page.locator("#account-facts"), "name")).to_have_text("Octo", timeout=WAIT_MS)
    expect(field(limit_row(page, "ingests"), "used")).to_have_text("0", timeout=WAIT_MS)
    expect(page.locator("#keys-message")).to_have_text(detail, timeout=WAIT_MS)
    expect(page.locator("#key-form")).to_be_hidden()
    with page.expect_response(lambda r: r.url.endswith("/api/v1/billing/checkout"),
                              timeout=WAIT_MS) as answered:
        page.click('#billing-buttons button[data-plan="pro"]')
    assert answered.value.status == 403
    expect(page.locator("#billing-message")).to_have_text(detail)
    expect(page).to_have_url(re.compile(r"^http://127\.0\.0\.1:\d+/#account$"))  # stayed

    ingester = world.key(octo, ["ingest"], "ingester")["key"]  # no read: itself, no usage
    with world.as_key(ingester) as client:
        me = client.get("/api/v1/accounts/me")
        usage = client.get("/api/v1/usage")
    assert me.status_code == 200 and usage.status_code == 403
    page.click("#signout")
    sign_in(page, ingester)
    open_account(page)
    expect(field(page.locator("#account-facts"), "name")).to_have_text("Octo", timeout=WAIT_MS)
    expect(page.locator("#usage-message")).to_have_text(usage.json()["detail"],
                                                         timeout=WAIT_MS)
