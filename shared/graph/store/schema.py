"""The graph store's schema: numbered migrations, the same for both databases.

Each step is a list of statements written once, with the few column types that
differ between SQLite and PostgreSQL as placeholders ({id}, {bigint}, ...)
filled in by the backend's `Dialect`. A step is applied at most once per
database and recorded in `schema_migrations`; the backend applies the missing
ones on open, under a lock that makes two processes opening at once safe.
Steps are append-only: to change the schema, add a step, never edit one.

Tables (all facts are scoped to a snapshot; there are no foreign keys from nodes
and edges so that bulk loads do not pay a lookup per row):

- repositories: url (unique), and since migration 5 the registry's record (settings,
  state, sizes, times; shared/graph/store/registry.py); branches: per tracked branch
  the commit and snapshot indexed; webhook_deliveries: delivery ids seen.
- accounts, api_keys (a digest of each key, never the key), repo_accounts (which
  accounts own which repository), stripe_events (ids claimed and applied):
  migrations 6 and 8, shared/graph/store/accounts.py.
- snapshots: one per (repository, commit sha); `taken_at` is when it was last
  written (epoch seconds); `stats` holds the Graph's loc, external import
  counts, skipped files and counts by kind.
- nodes: a Graph's nodes, keyed by (snapshot_id, id).
- edges: a Graph's edges (`candidates`: see shared.graph.model.Edge). Indexed
  on (snapshot, src, kind, dst) and (snapshot, dst, kind, src) so that one step
  of a walk in either direction is an index-only lookup.
- sources: each file's text at the snapshot's commit and its sha256, for
  snippets, context bodies and snapshot diffs (impact of base..head).
- documents, postings: the keyword index (see shared/graph/store/text.py): one
  document per chunk (a symbol, or a file without symbols) with its length in
  terms; postings (snapshot, term, node) with the term's weight in that document.
- snapshots.ready: false from the snapshot's write until the worker has also
  stored its vectors; queries answer from the newest ready snapshot.
- nodes are also indexed by (snapshot, lowercased name) and (snapshot, lowercased
  qualname), migration 10: GraphStore.nodes_named.
- repositories.deleted_branch (migration 11): the default branch the remote deleted,
  while the index built from it still answers; accounts.email_key (migration 12): the
  lowercased e-mail address, unique.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    """The column types that differ between the two databases."""

    id: str  # an auto-assigned primary key that is never reused
    bigint: str
    float: str
    json: str
    bool: str

    def render(self, statement: str) -> str:
        return statement.format(id=self.id, bigint=self.bigint, float=self.float,
                                json=self.json, bool=self.bool)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at {float} NOT NULL
)"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "repositories, snapshots, nodes, edges", (
        """CREATE TABLE repositories (
            id {id},
            url TEXT NOT NULL UNIQUE
        )""",
        """CREATE TABLE snapshots (
            id {id},
            repo_id {bigint} NOT NULL REFERENCES repositories (id),
            commit_sha TEXT NOT NULL,
            taken_at {float} NOT NULL,
            stats {json} NOT NULL,
            UNIQUE (repo_id, commit_sha)
        )""",
        "CREATE INDEX snapshots_by_time ON snapshots (repo_id, taken_at)",
        """CREATE TABLE nodes (
            snapshot_id {bigint} NOT NULL,
            id {bigint} NOT NULL,
            kind TEXT NOT NULL,
            path TEXT NOT NULL,
            name TEXT NOT NULL,
            qualname TEXT NOT NULL,
            start_line INTEGER NOT NULL,
            end_line INTEGER NOT NULL,
            language TEXT NOT NULL,
            docstring TEXT,
            PRIMARY KEY (snapshot_id, id)
        )""",
        "CREATE INDEX nodes_by_line ON nodes (snapshot_id, path, start_line)",
        """CREATE TABLE edges (
            snapshot_id {bigint} NOT NULL,
            src {bigint} NOT NULL,
            dst {bigint} NOT NULL,
            kind TEXT NOT NULL,
            line INTEGER,
            weight INTEGER NOT NULL,
            type_only {bool} NOT NULL
        )""",
        "CREATE INDEX edges_out ON edges (snapshot_id, src, kind, dst)",
        "CREATE INDEX edges_in ON edges (snapshot_id, dst, kind, src)",
    )),
    Migration(2, "sources, keyword index, ready snapshots", (
        # Snapshots written before this step were complete when written.
        "ALTER TABLE snapshots ADD COLUMN ready {bool} NOT NULL DEFAULT TRUE",
        """CREATE TABLE sources (
            snapshot_id {bigint} NOT NULL,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            text TEXT NOT NULL,
            PRIMARY KEY (snapshot_id, path)
        )""",
        """CREATE TABLE documents (
            snapshot_id {bigint} NOT NULL,
            node_id {bigint} NOT NULL,
            length {float} NOT NULL,
            PRIMARY KEY (snapshot_id, node_id)
        )""",
        """CREATE TABLE postings (
            snapshot_id {bigint} NOT NULL,
            term TEXT NOT NULL,
            node_id {bigint} NOT NULL,
            weight {float} NOT NULL,
            PRIMARY KEY (snapshot_id, term, node_id)
        )""",
    )),
    Migration(3, "fencing tokens", (
        # The largest lease token that has written each repository (shared.jobs.Job.fence).
        """CREATE TABLE fences (
            repo TEXT PRIMARY KEY,
            token {bigint} NOT NULL
        )""",
    )),
    Migration(4, "call edges' candidates", (
        # CALLS: how many targets the surest site behind the edge could reach (1: certain).
        "ALTER TABLE edges ADD COLUMN candidates INTEGER NOT NULL DEFAULT 1",
    )),
    Migration(5, "repository registry", (
        # shared/graph/store/registry.py: a repository's settings and life cycle.
        "ALTER TABLE repositories ADD COLUMN default_branch TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE repositories ADD COLUMN branches {json} NOT NULL DEFAULT '[]'",
        "ALTER TABLE repositories ADD COLUMN state TEXT NOT NULL DEFAULT 'registered'",
        "ALTER TABLE repositories ADD COLUMN reason TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE repositories ADD COLUMN sync_interval INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE repositories ADD COLUMN webhook_secret TEXT",
        "ALTER TABLE repositories ADD COLUMN force_next {bool} NOT NULL DEFAULT FALSE",
        "ALTER TABLE repositories ADD COLUMN created_at {float} NOT NULL DEFAULT 0",
        "ALTER TABLE repositories ADD COLUMN last_sync_at {float} NOT NULL DEFAULT 0",
        "ALTER TABLE repositories ADD COLUMN last_query_at {float} NOT NULL DEFAULT 0",
        "ALTER TABLE repositories ADD COLUMN last_push_at {float} NOT NULL DEFAULT 0",
        "ALTER TABLE repositories ADD COLUMN size {json} NOT NULL DEFAULT '{{}}'",
        # Repositories indexed before the registry existed come out of it ready.
        """UPDATE repositories SET state = 'ready',
            created_at = (SELECT MIN(taken_at) FROM snapshots s WHERE s.repo_id = repositories.id),
            last_sync_at = (SELECT MAX(taken_at) FROM snapshots s WHERE s.repo_id = repositories.id)
          WHERE EXISTS (SELECT 1 FROM snapshots s WHERE s.repo_id = repositories.id)""",
        """CREATE TABLE branches (
            repo_id {bigint} NOT NULL,
            name TEXT NOT NULL,
            commit_sha TEXT NOT NULL DEFAULT '',
            snapshot_id {bigint},
            synced_at {float} NOT NULL DEFAULT 0,
            remote_commit TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (repo_id, name)
        )""",
        """CREATE TABLE webhook_deliveries (
            delivery TEXT PRIMARY KEY,
            received_at {float} NOT NULL
        )""",
    )),
    Migration(6, "accounts, API keys, repository owners, Stripe events", (
        # shared/graph/store/accounts.py
        """CREATE TABLE accounts (
            id {id},
            name TEXT NOT NULL,
            email TEXT NOT NULL,
            plan TEXT NOT NULL,
            state TEXT NOT NULL,
            stripe_customer TEXT UNIQUE,
            subscription_id TEXT NOT NULL DEFAULT '',
            subscription_status TEXT NOT NULL DEFAULT '',
            subscription_at {float} NOT NULL DEFAULT 0,
            grace_until {float} NOT NULL DEFAULT 0,
            created_at {float} NOT NULL
        )""",
        """CREATE TABLE api_keys (
            id {id},
            account_id {bigint} NOT NULL REFERENCES accounts (id),
            name TEXT NOT NULL,
            prefix TEXT NOT NULL,
            digest TEXT NOT NULL UNIQUE,
            scopes {json} NOT NULL,
            created_at {float} NOT NULL,
            last_used_at {float} NOT NULL DEFAULT 0,
            revoked_at {float} NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX api_keys_by_account ON api_keys (account_id)",
        """CREATE TABLE repo_accounts (
            repo_url TEXT NOT NULL,
            account_id {bigint} NOT NULL,
            granted_at {float} NOT NULL,
            PRIMARY KEY (repo_url, account_id)
        )""",
        "CREATE INDEX repo_accounts_by_account ON repo_accounts (account_id)",
        """CREATE TABLE stripe_events (
            id TEXT PRIMARY KEY,
            received_at {float} NOT NULL
        )""",
    )),
    Migration(7, "a branch's failure", (
        # Why the last job of a branch other than the default one failed ("": it did not);
        # the repository's own state and reason follow its default branch.
        "ALTER TABLE branches ADD COLUMN reason TEXT NOT NULL DEFAULT ''",
    )),
    Migration(8, "a Stripe event applied, not only claimed", (
        # 0 while a delivery is applying it (claimed at received_at); the rows already
        # there were applied.
        "ALTER TABLE stripe_events ADD COLUMN applied_at {float} NOT NULL DEFAULT 0",
        "UPDATE stripe_events SET applied_at = received_at",
    )),
    Migration(9, "a forced rebuild asked for until one is done", (
        # Counts the requests, so that a job clears only the one it saw: a request made
        # while it ran is left for the next job.
        "ALTER TABLE repositories ADD COLUMN force_asked {bigint} NOT NULL DEFAULT 0",
        "UPDATE repositories SET force_asked = 1 WHERE force_next",
    )),
    Migration(10, "symbols by name", (
        # GraphStore.nodes_named: a symbol by its own or qualified name, any case, in one
        # index lookup per name instead of a read of every node of the snapshot.
        "CREATE INDEX nodes_by_name ON nodes (snapshot_id, LOWER(name))",
        "CREATE INDEX nodes_by_qualname ON nodes (snapshot_id, LOWER(qualname))",
    )),
    Migration(11, "a default branch deleted on the remote", (
        # Its name while the index built from it still answers (stale) until the remote's
        # default branch is indexed ('': none deleted); shared/graph/store/registry.py.
        "ALTER TABLE repositories ADD COLUMN deleted_branch TEXT NOT NULL DEFAULT ''",
    )),
    Migration(12, "one account per e-mail address", (
        # LOWER(email), unique. An account that shared its address with an older one
        # before this step gets NULL (unique indexes let NULLs be): it keeps working, and
        # the older one's key refuses every new account or change to that address.
        "ALTER TABLE accounts ADD COLUMN email_key TEXT",
        """UPDATE accounts SET email_key = LOWER(email) WHERE id =
            (SELECT MIN(a.id) FROM accounts a WHERE LOWER(a.email) = LOWER(accounts.email))""",
        "CREATE UNIQUE INDEX accounts_by_email ON accounts (email_key)",
    )),
)

NODE_COLUMNS = ("snapshot_id", "id", "kind", "path", "name", "qualname", "start_line",
                "end_line", "language", "docstring")
EDGE_COLUMNS = ("snapshot_id", "src", "dst", "kind", "line", "weight", "type_only",
                "candidates")
SOURCE_COLUMNS = ("snapshot_id", "path", "sha256", "text")
DOCUMENT_COLUMNS = ("snapshot_id", "node_id", "length")
POSTING_COLUMNS = ("snapshot_id", "term", "node_id", "weight")
