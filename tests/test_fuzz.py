"""The API fuzzed from its own OpenAPI document (schemathesis): for every operation,
requests generated from the schema -- valid ones and ones that break it -- never get a 500,
every answer has a status, content type and body the document declares, and no route
under /api/ answers without the token.

The app is the real one on real stores: a SQLite queue and the embedded graph and vector
stores in a temp dir (empty: the query routes answer with their errors)."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation

from cloud.app import create_app
from cloud.auth import WEBHOOKS
from cloud.openapi import openapi_spec
from shared.queue.sqlite import SqliteQueue
from shared.settings import Settings
from tests.test_status_page import LiveServer

TOKEN = "fuzz-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


# Loaded from the document itself (the same dict GET /openapi.json serves).
schema = schemathesis.openapi.from_dict(openapi_spec())
FUZZ = settings(max_examples=30, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much])


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    """The app served for real: schemathesis's checks send requests of their own (the
    same request without the token, for one)."""
    data = tmp_path_factory.mktemp("fuzz")
    app = create_app(Settings(admin_token=TOKEN, data_dir=data, allow_local_repos=True),
                     queue=SqliteQueue(data / "queue.sqlite3", max_queue_size=10))
    server = LiveServer(app)
    server.start()
    yield server.url
    server.stop()


def call(base_url: str, case, headers: dict):
    return case.call(base_url=base_url, headers=headers)


@schema.parametrize()
@FUZZ
def test_every_answer_is_declared_and_none_is_a_500(case, base_url):
    # A case whose headers break the schema means "without the token" (the token is the
    # one required header): sending ours anyway would hide that, and the case's other
    # faults may not survive serialisation (an empty-named query parameter is dropped),
    # leaving a valid request that "should have been rejected".
    headers_broken = case.meta is not None and case.meta.is_negative_at(
        ParameterLocation.HEADER)
    response = call(base_url, case, {} if headers_broken else AUTH)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:300])
    # Every check but "schema-valid data is accepted": the document types a repository
    # URL as a string, and which strings are repositories (no private hosts, no options,
    # ...) is more than a schema can say; those get a declared 400.
    case.validate_response(response, headers=AUTH,
                           excluded_checks=[schemathesis.checks.positive_data_acceptance])


@schema.parametrize()
@settings(max_examples=5, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_no_route_under_api_answers_without_the_token(case, base_url):
    if not case.path.startswith("/api/") or case.path in WEBHOOKS.values():
        return  # the page, /health and /openapi.json are public by design; webhooks signed
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": TOKEN}):
        response = call(base_url, case, headers)
        assert response.status_code == 401, (case.method, case.formatted_path, headers)
