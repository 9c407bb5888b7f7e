"""Accounts, API keys, repository owners and Stripe events in the graph store
(shared/graph/store/accounts.py), on PostgreSQL and SQLite."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.graph.store import base as store_base
from shared.graph.store.accounts import (KEY_PREFIX, AccountState, EventClaim, Scope,
                                        key_digest)
from tests.test_graph_store import graph_backend, open_store, store  # noqa: F401 (fixtures)

URL = "https://github.com/octo/widgets"
LEASE = 300.0


def test_a_key_is_shown_once_stored_as_a_digest_and_revocable(store):
    account = store.create_account("Octo", "ops@octo.example")
    key, secret = store.create_key(account.id, "ci", [Scope.READ, "ingest"])
    assert secret.startswith(KEY_PREFIX) and len(secret) == len(KEY_PREFIX) + 43
    assert key.prefix == secret[:16] and key.scopes == {Scope.READ, Scope.INGEST}
    stored = store._query("SELECT prefix, digest FROM api_keys")
    assert stored == [(secret[:16], key_digest(secret))]  # never the key itself
    assert store.key_for(secret).id == key.id and store.key_for(secret + "x") is None
    assert store.revoke_key(key.id) and not store.revoke_key(key.id)
    assert store.key_for(secret) is None and store.keys(account.id)[0].revoked_at > 0
    assert "secret" not in key.public() and key.public()["prefix"] == key.prefix


def test_keys_are_unique_and_belong_to_their_account(store):
    one = store.create_account("One", "one@example.org")
    two = store.create_account("Two", "two@example.org", plan="pro")
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda i: store.create_key((one, two)[i % 2].id, f"k{i}",
                                                        [Scope.READ]), range(40)))
    assert len({secret for _, secret in made}) == 40
    assert {k.account_id for k in store.keys(one.id)} == {one.id}
    assert len(store.keys(two.id)) == 20 and store.account(two.id).plan == "pro"


def test_repositories_belong_to_the_accounts_that_ingested_them(store):
    one = store.create_account("One", "one@example.org")
    two = store.create_account("Two", "two@example.org")
    store.register(URL)
    store.grant_repo(URL, one.id)
    store.grant_repo(URL, one.id)  # twice: once
    assert store.repos_of(one.id) == {URL} and store.repos_of(two.id) == set()
    store.grant_repo(URL, two.id)
    assert store.owners_of(URL) == {one.id, two.id}
    store.delete_repository(URL)
    assert store.owners_of(URL) == set() and store.repos_of(one.id) == set()


def test_stripe_events_apply_once_and_never_go_back_in_time(store):
    account = store.create_account("Payer", "pay@example.org")
    store.set_customer(account.id, "cus_123")
    assert store.account_by_customer("cus_123").id == account.id
    claim, at = store.claim_stripe_event("evt_1", LEASE)
    assert claim is EventClaim.NEW
    assert store.claim_stripe_event("evt_1", LEASE)[0] is EventClaim.APPLYING
    store.forget_stripe_event("evt_1", at)
    claim, at = store.claim_stripe_event("evt_1", LEASE)
    assert claim is EventClaim.NEW
    store.applied_stripe_event("evt_1")
    assert store.claim_stripe_event("evt_1", LEASE)[0] is EventClaim.APPLIED
    store.forget_stripe_event("evt_1", at)  # applied: nothing to give up
    assert store.claim_stripe_event("evt_1", LEASE)[0] is EventClaim.APPLIED
    assert store.apply_subscription(account.id, "sub_1", "active", "pro", event_at=200)
    assert not store.apply_subscription(account.id, "sub_1", "canceled", "free", event_at=100)
    now = store.account(account.id)
    assert (now.plan, now.subscription_status, now.subscription_at) == ("pro", "active", 200)
    store.set_plan(account.id, "pro", AccountState.PAST_DUE, grace_until=500)
    assert store.account(account.id).state is AccountState.PAST_DUE
    assert store.account(account.id).public()["billing"] is True


@pytest.mark.parametrize("bad", ["owner", ""])
def test_an_unknown_scope_is_refused(store, bad):
    account = store.create_account("One", "one@example.org")
    with pytest.raises(ValueError):
        store.create_key(account.id, "k", [bad])


def test_billing_state_changes_leave_the_plan_and_a_closed_account_alone(store):
    account = store.create_account("Payer", "pay@example.org", plan="pro")
    assert store.set_billing_state(account.id, AccountState.PAST_DUE, grace_until=900)
    now = store.account(account.id)
    assert (now.plan, now.state, now.grace_until) == ("pro", AccountState.PAST_DUE, 900)
    assert store.set_billing_state(account.id, AccountState.ACTIVE, grace_until=0)
    assert store.account(account.id).grace_until == 0
    store.set_plan(account.id, "pro", AccountState.CLOSED)
    assert not store.set_billing_state(account.id, AccountState.ACTIVE, grace_until=0)
    assert store.account(account.id).state is AccountState.CLOSED
    assert not store.set_billing_state(account.id + 1, AccountState.ACTIVE, grace_until=0)


def test_a_claim_its_process_abandoned_expires_and_only_its_own_is_given_up(store):
    now = [1000.0]
    store.clock = lambda: now[0]
    first, first_at = store.claim_stripe_event("evt_9", LEASE)
    now[0] += LEASE - 1
    assert store.claim_stripe_event("evt_9", LEASE)[0] is EventClaim.APPLYING
    now[0] += 2  # the first delivery's process is taken for dead
    second, second_at = store.claim_stripe_event("evt_9", LEASE)
    assert (first, second) == (EventClaim.NEW, EventClaim.NEW)
    store.forget_stripe_event("evt_9", first_at)  # late: the claim is no longer its own
    assert store.claim_stripe_event("evt_9", LEASE)[0] is EventClaim.APPLYING
    store.applied_stripe_event("evt_9")
    now[0] += 10 * LEASE  # an applied event never expires
    assert store.claim_stripe_event("evt_9", LEASE)[0] is EventClaim.APPLIED


def test_events_recorded_before_claims_existed_count_as_applied(open_store, monkeypatch):
    monkeypatch.setattr(store_base, "MIGRATIONS", store_base.MIGRATIONS[:7])
    old = open_store()
    old._write(lambda writer: writer.execute(  # as the code before migration 8 recorded it
        "INSERT INTO stripe_events (id, received_at) VALUES (?, ?)", ("evt_old", 100.0)))
    old.close()
    monkeypatch.undo()
    store = open_store()
    assert store.claim_stripe_event("evt_old", LEASE)[0] is EventClaim.APPLIED


def test_accounts_that_shared_an_address_before_migration_12_keep_working(open_store,
                                                                          monkeypatch):
    """Two accounts with one address (any case) made before e-mail addresses became
    unique: the migration applies, both keep working, and the address is taken."""
    from shared.graph.store.schema import MIGRATIONS
    monkeypatch.setattr(store_base, "MIGRATIONS", MIGRATIONS[:11])
    old = open_store()
    for name, email in (("One", "Ops@Octo.example"), ("Two", "ops@octo.example")):
        old._write(lambda writer: writer.execute(
            "INSERT INTO accounts (name, email, plan, state, created_at)"
            " VALUES (?, ?, 'free', 'active', 0)", (name, email)))
    monkeypatch.undo()
    store = open_store()  # the upgrade
    assert 12 in store.schema_versions()
    one, two = store.accounts()
    assert (one.name, two.name) == ("One", "Two")
    assert store.update_account(two.id, name="Two again") and store.account(two.id).name \
        == "Two again"
    assert store.create_account("Three", "OPS@octo.example") is None
    assert not store.update_account(two.id, email="OPS@OCTO.EXAMPLE")
    assert store.update_account(one.id, email="ops@octo.example")  # its own, recased
    made = store.create_account("Four", "four@octo.example")
    assert made is not None and store.create_account("Five", "Four@Octo.Example") is None
