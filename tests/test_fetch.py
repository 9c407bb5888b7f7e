"""The worker's DNS guard, with the machine's real resolver."""
from __future__ import annotations

import pytest

from edge.fetch import UnsafeTarget, check_clone_target
from edge.pipeline import run_pipeline
from shared.jobs import Job


@pytest.mark.parametrize("url", ["http://localhost/o/r", "https://127.0.0.1/o/r",
                                 "https://[::1]/o/r", "https://10.1.2.3/o/r"])
def test_hosts_resolving_to_private_addresses_are_refused(url):
    with pytest.raises(UnsafeTarget, match="non-public"):
        check_clone_target(url)


def test_public_address_passes():
    assert check_clone_target("https://8.8.8.8/o/r") == ["8.8.8.8"]


def test_unresolvable_host_is_refused_with_a_reason():
    with pytest.raises(UnsafeTarget, match="cannot resolve"):
        check_clone_target("https://no-such-host.invalid/o/r")


def test_the_pipeline_refuses_before_its_first_stage():
    job = Job(id="j", repo_url="http://localhost/o/r", submitted_at=0, ttl=60)
    stages = []
    with pytest.raises(UnsafeTarget):
        run_pipeline(job, lambda stage, progress: stages.append(stage))
    assert stages == ["fetch"]
