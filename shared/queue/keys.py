"""Every Redis key the system uses, built in this one place."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "na:"

    @property
    def queue(self) -> str:
        """List of queued job ids, oldest at the head. Never expires."""
        return self.prefix + "queue"

    @property
    def stale_at(self) -> str:
        """Sorted set queued job id -> when it goes stale (submitted_at + ttl)."""
        return self.prefix + "stale_at"

    @property
    def pending_repos(self) -> str:
        """Hash repo_url -> id of its queued job, to answer a resubmission with it."""
        return self.prefix + "pending_repos"

    @property
    def running_repos(self) -> str:
        """Hash repo_url -> id of the job last claimed for it: while that job runs, no
        other job of the repository is claimed (a lock that is the job's lease)."""
        return self.prefix + "running_repos"

    @property
    def leases(self) -> str:
        """Sorted set job id -> lease deadline (epoch seconds)."""
        return self.prefix + "leases"

    @property
    def dead(self) -> str:
        """List of dead-lettered job ids, newest first, capped."""
        return self.prefix + "dead"

    @property
    def history(self) -> str:
        """List of JSON history records, newest first, capped at 100."""
        return self.prefix + "history"

    @property
    def workers(self) -> str:
        """Sorted set worker id -> last heartbeat."""
        return self.prefix + "workers"

    @property
    def fence(self) -> str:
        """The last fencing token issued (a lease's; see shared.jobs.fence_from)."""
        return self.prefix + "fence"

    @property
    def job_prefix(self) -> str:
        return self.prefix + "job:"

    def job(self, job_id: str) -> str:
        """Hash of one job's fields; expires after its TTL plus retention."""
        return self.job_prefix + job_id

    @property
    def worker_prefix(self) -> str:
        return self.prefix + "worker:"

    def worker(self, worker_id: str) -> str:
        """JSON status a worker last reported; expires when the worker goes silent."""
        return self.worker_prefix + worker_id

    @property
    def claim_prefix(self) -> str:
        return self.prefix + "claim:"

    # --- plan limits and metering (shared.limits) ------------------------------------
    def limit(self, account_id: str, limit: str) -> str:
        """Hash {start, used}: the account's count in the limit's current window (a
        start that is not the current window's reads as 0); expires at the window's end."""
        return f"{self.prefix}limit:{limit}:{account_id}"

    def limit_call(self, call_id: str) -> str:
        """The answer a counted check gave, kept a minute so a resent call counts once."""
        return f"{self.prefix}limit_call:{call_id}"

    def usage_prefix(self, account_id: str) -> str:
        """+ a UTC day (YYYY-MM-DD, made by the script from the server's clock): hash
        limit -> amount counted that day; expires 40 days after the day ends."""
        return f"{self.prefix}usage:{account_id}:"
