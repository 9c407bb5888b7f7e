"""Accounts, their API keys, the repositories they own, and what Stripe told about them.

An account (migration 6) has a plan, a state and, once it has paid, a Stripe customer
and subscription. Its API keys are `na_live_` and 43 URL-safe characters (32 random
bytes); only a SHA-256 digest of a key is stored. A fast digest is right here, unlike
for passwords: a key has 256 bits of entropy, so nothing can be guessed from its
digest, and the lookup must cost one indexed read per request. The first 16
characters (`prefix`) are kept in the clear so a person can tell keys apart.

Tenancy: `repo_accounts` says which accounts ingested which repository (by URL, the
registry's key). An account sees only those; the admin token (the owner) sees all.

Stripe: a delivery claims its event id (`claim_stripe_event`) and marks it applied
when done, or gives the claim up when applying fails; a claim abandoned by a process
that died expires. A subscription change is applied only if the event that carries it
is not older than the last one applied (`apply_subscription`), so replays and
out-of-order deliveries change nothing.
`GraphStore` inherits these methods, as it does the registry's.
"""
from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Iterable

from shared.plans import FREE

KEY_PREFIX = "na_live_"
SHOWN_PREFIX = 16  # characters of a key kept in the clear: na_live_ and 8 more
_ACCOUNT_FIELDS = ("id", "name", "email", "plan", "state", "stripe_customer",
                   "subscription_id", "subscription_status", "subscription_at", "grace_until",
                   "created_at")
_KEY_FIELDS = ("id", "account_id", "name", "prefix", "scopes", "created_at", "last_used_at",
               "revoked_at")


class Scope(str, enum.Enum):
    READ = "read"  # questions: search, graph, context, impact, status, usage
    INGEST = "ingest"  # ingest, register, sync
    ADMIN = "admin"  # keys, settings, deletion, billing


class EventClaim(str, enum.Enum):
    """What a delivery of a Stripe event found (`claim_stripe_event`)."""
    NEW = "new"
    APPLYING = "applying"
    APPLIED = "applied"


class AccountState(str, enum.Enum):
    ACTIVE = "active"
    PAST_DUE = "past_due"  # a payment failed: the plan holds until grace_until
    CLOSED = "closed"


@dataclass
class Account:
    id: int
    name: str
    email: str
    plan: str = "free"
    state: AccountState = AccountState.ACTIVE
    stripe_customer: str = ""
    subscription_id: str = ""
    subscription_status: str = ""
    subscription_at: float = 0.0  # the Stripe event time of the last change applied
    grace_until: float = 0.0
    created_at: float = 0.0

    def public(self) -> dict:
        return {"id": self.id, "name": self.name, "email": self.email, "plan": self.plan,
                "state": self.state.value, "subscription_status": self.subscription_status
                or None, "grace_until": self.grace_until or None,
                "created_at": self.created_at, "billing": bool(self.stripe_customer)}


@dataclass
class ApiKey:
    id: int
    account_id: int
    name: str
    prefix: str
    scopes: frozenset[Scope] = field(default_factory=frozenset)
    created_at: float = 0.0
    last_used_at: float = 0.0
    revoked_at: float = 0.0

    def public(self) -> dict:
        """Everything but the secret (which is not stored)."""
        return {"id": self.id, "account_id": self.account_id, "name": self.name,
                "prefix": self.prefix, "scopes": sorted(s.value for s in self.scopes),
                "created_at": self.created_at, "last_used_at": self.last_used_at or None,
                "revoked": bool(self.revoked_at)}



def effective_plan(account: Account, now: float) -> str:
    """The plan whose limits hold at `now`: a closed account, or one whose payment
    failed and whose grace period is over, has the free plan's."""
    lapsed = account.state is AccountState.CLOSED or (
        account.state is AccountState.PAST_DUE and now > account.grace_until)
    return FREE if lapsed else account.plan


def key_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_key(presented: str) -> bool:
    return presented.startswith(KEY_PREFIX) and len(presented) <= 200


class AccountsMixin:
    """Account methods of GraphStore (shared/graph/store/base.py)."""

    # --- accounts --------------------------------------------------------------------
    def create_account(self, name: str, email: str, plan: str = "free") -> Account | None:
        """The new account; None when another has the e-mail address (any case)."""
        now = self.clock()
        made = self._write(lambda writer: writer.execute(
            "INSERT INTO accounts (name, email, email_key, plan, state, created_at)"
            " VALUES (?, ?, LOWER(?), ?, ?, ?) ON CONFLICT (email_key) DO NOTHING RETURNING id",
            (name, email, email, plan, AccountState.ACTIVE.value, now)))
        return self.account(int(made[0][0])) if made else None

    def update_account(self, account_id: int, *, name: str | None = None,
                       email: str | None = None, plan: str | None = None) -> bool:
        """Change what is given; False (nothing changed) when another account has the
        e-mail address (any case). The unique index refuses a concurrent taker too."""
        def work(writer) -> bool:
            if email is not None and writer.execute(
                    "SELECT id FROM accounts WHERE email_key = LOWER(?) AND id <> ?",
                    (email, account_id)):
                return False
            if email is not None:
                writer.execute("UPDATE accounts SET email = ?, email_key = LOWER(?)"
                               " WHERE id = ?", (email, email, account_id))
            for column, value in (("name", name), ("plan", plan)):
                if value is not None:
                    writer.execute(f"UPDATE accounts SET {column} = ? WHERE id = ?",
                                   (value, account_id))
            return True
        return self._write(work)

    def delete_account(self, account_id: int) -> None:
        """The account, its keys (none answers from now on) and its claims on
        repositories, in one transaction; the repositories are the caller's to let go
        of first (`release_repo`, or deleting those only it owned)."""
        def work(writer) -> None:
            writer.execute("DELETE FROM api_keys WHERE account_id = ?", (account_id,))
            writer.execute("DELETE FROM repo_accounts WHERE account_id = ?", (account_id,))
            writer.execute("DELETE FROM accounts WHERE id = ?", (account_id,))
        self._write(work)

    def account(self, account_id: int) -> Account | None:
        rows = self._query(f"SELECT {', '.join(_ACCOUNT_FIELDS)} FROM accounts WHERE id = ?",
                           (account_id,))
        return _account(rows[0]) if rows else None

    def account_by_customer(self, customer: str) -> Account | None:
        rows = self._query(f"SELECT {', '.join(_ACCOUNT_FIELDS)} FROM accounts"
                           " WHERE stripe_customer = ?", (customer,))
        return _account(rows[0]) if rows else None

    def accounts(self) -> list[Account]:
        return [_account(row) for row in self._query(
            f"SELECT {', '.join(_ACCOUNT_FIELDS)} FROM accounts ORDER BY id")]

    def set_customer(self, account_id: int, customer: str) -> None:
        self._write(lambda writer: writer.execute(
            "UPDATE accounts SET stripe_customer = ? WHERE id = ?", (customer, account_id)))

    def set_plan(self, account_id: int, plan: str, state: AccountState | None = None,
                 grace_until: float | None = None) -> None:
        def work(writer) -> None:
            writer.execute("UPDATE accounts SET plan = ? WHERE id = ?", (plan, account_id))
            if state is not None:
                writer.execute("UPDATE accounts SET state = ? WHERE id = ?",
                               (state.value, account_id))
            if grace_until is not None:
                writer.execute("UPDATE accounts SET grace_until = ? WHERE id = ?",
                               (grace_until, account_id))
        self._write(work)

    def set_billing_state(self, account_id: int, state: AccountState,
                          grace_until: float) -> bool:
        """The state and grace period alone, never the plan: a webhook must not write
        back a plan it read before a concurrent subscription change. A closed account
        stays closed (payments do not reopen it). True when the account changed."""
        return bool(self._write(lambda writer: writer.execute(
            "UPDATE accounts SET state = ?, grace_until = ? WHERE id = ? AND state <> ?"
            " RETURNING id", (state.value, grace_until, account_id,
                              AccountState.CLOSED.value))))

    # --- keys ------------------------------------------------------------------------
    def create_key(self, account_id: int, name: str,
                   scopes: Iterable[Scope]) -> tuple[ApiKey, str]:
        """A new key of the account: (its record, the secret, shown this once)."""
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        scope_list = sorted({Scope(s).value for s in scopes})
        key_id = self._write(lambda writer: writer.execute(
            "INSERT INTO api_keys (account_id, name, prefix, digest, scopes, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (account_id, name, secret[:SHOWN_PREFIX], key_digest(secret),
             self._encode_stats(scope_list), self.clock()))[0][0])
        return self.key(int(key_id)), secret

    def key(self, key_id: int) -> ApiKey | None:
        rows = self._query(f"SELECT {', '.join(_KEY_FIELDS)} FROM api_keys WHERE id = ?",
                           (key_id,))
        return self._key(rows[0]) if rows else None

    def keys(self, account_id: int) -> list[ApiKey]:
        return [self._key(row) for row in self._query(
            f"SELECT {', '.join(_KEY_FIELDS)} FROM api_keys WHERE account_id = ? ORDER BY id",
            (account_id,))]

    def key_for(self, secret: str) -> ApiKey | None:
        """The live (not revoked) key whose secret this is, by its digest."""
        rows = self._query(f"SELECT {', '.join(_KEY_FIELDS)} FROM api_keys"
                           " WHERE digest = ? AND revoked_at = 0", (key_digest(secret),))
        return self._key(rows[0]) if rows else None

    def revoke_key(self, key_id: int) -> bool:
        """True when the key was live until now."""
        return bool(self._write(lambda writer: writer.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at = 0 RETURNING id",
            (self.clock(), key_id))))

    def touch_key(self, key_id: int) -> None:
        self._write(lambda writer: writer.execute(
            "UPDATE api_keys SET last_used_at = ? WHERE id = ?", (self.clock(), key_id)))

    def _key(self, row: tuple) -> ApiKey:
        id_, account_id, name, prefix, scopes, created, used, revoked = row
        return ApiKey(int(id_), int(account_id), name, prefix,
                      frozenset(Scope(s) for s in self._decode_stats(scopes)),
                      float(created or 0), float(used or 0), float(revoked or 0))

    # --- tenancy ---------------------------------------------------------------------
    def grant_repo(self, url: str, account_id: int) -> None:
        """The account ingested (or registered) the repository: it may see it."""
        self._write(lambda writer: writer.execute(
            "INSERT INTO repo_accounts (repo_url, account_id, granted_at) VALUES (?, ?, ?)"
            " ON CONFLICT (repo_url, account_id) DO NOTHING", (url, account_id, self.clock())))

    def repos_of(self, account_id: int) -> frozenset[str]:
        return frozenset(row[0] for row in self._query(
            "SELECT repo_url FROM repo_accounts WHERE account_id = ?", (account_id,)))

    def owners_of(self, url: str) -> frozenset[int]:
        return frozenset(int(row[0]) for row in self._query(
            "SELECT account_id FROM repo_accounts WHERE repo_url = ?", (url,)))

    def release_repo(self, url: str, account_id: int) -> frozenset[int]:
        """The account no longer owns the repository; the owners left."""
        self._write(lambda writer: writer.execute(
            "DELETE FROM repo_accounts WHERE repo_url = ? AND account_id = ?",
            (url, account_id)))
        return self.owners_of(url)

    # --- Stripe ----------------------------------------------------------------------
    def claim_stripe_event(self, event_id: str, lease: float) -> tuple[EventClaim, float]:
        """Whether this delivery of an event is to apply it, and the claim's time.

        NEW: first seen, or claimed more than `lease` seconds ago by a delivery that
        neither applied it nor gave it up (its process died): this one applies it.
        APPLYING: another delivery is applying it now. APPLIED: done before."""
        now = self.clock()
        for _ in range(2):  # a claim given up between the two statements: claim again
            if self._write(lambda writer: writer.execute(
                    "INSERT INTO stripe_events (id, received_at, applied_at) VALUES (?, ?, 0)"
                    " ON CONFLICT (id) DO UPDATE SET received_at = excluded.received_at"
                    " WHERE stripe_events.applied_at = 0 AND stripe_events.received_at < ?"
                    " RETURNING id", (event_id, now, now - lease))):
                return EventClaim.NEW, now
            rows = self._query("SELECT applied_at FROM stripe_events WHERE id = ?", (event_id,))
            if rows:
                return (EventClaim.APPLIED if rows[0][0] else EventClaim.APPLYING), now
        return EventClaim.APPLYING, now

    def applied_stripe_event(self, event_id: str) -> None:
        self._write(lambda writer: writer.execute(
            "UPDATE stripe_events SET applied_at = ? WHERE id = ?", (self.clock(), event_id)))

    def forget_stripe_event(self, event_id: str, claimed_at: float) -> None:
        """Applying it failed: Stripe's retry must be treated as new. Only the claim made
        at `claimed_at` is given up, not a later delivery's that took over from it."""
        self._write(lambda writer: writer.execute(
            "DELETE FROM stripe_events WHERE id = ? AND received_at = ? AND applied_at = 0",
            (event_id, claimed_at)))

    def apply_subscription(self, account_id: int, subscription_id: str, status: str,
                           plan: str, event_at: float) -> bool:
        """Record a subscription's state as of the event created at `event_at`, unless a
        newer event's state is recorded already (Stripe does not promise order)."""
        return bool(self._write(lambda writer: writer.execute(
            "UPDATE accounts SET subscription_id = ?, subscription_status = ?, plan = ?,"
            " subscription_at = ? WHERE id = ? AND subscription_at <= ? RETURNING id",
            (subscription_id, status, plan, event_at, account_id, event_at))))


def _account(row: tuple) -> Account:
    (id_, name, email, plan, state, customer, subscription, status, at, grace,
     created) = row
    return Account(int(id_), name, email, plan, AccountState(state), customer or "",
                   subscription or "", status or "", float(at or 0), float(grace or 0),
                   float(created or 0))
