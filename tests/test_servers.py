"""The loopback servers in tests/servers.py are real and behave as promised.

Redis is driven with redis-py; the Upstash REST emulator with the real
upstash-redis client, plus raw httpx where the wire format itself matters.
"""

from __future__ import annotations

import base64
import time
from typing import Iterator

import httpx
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from upstash_redis import Redis as UpstashRedis
from upstash_redis.errors import UpstashError

from tests.servers import RedisServer, UpstashRestServer

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _redis_client(url: str) -> redis.Redis:
    # No retries: a stopped server must fail at once, not after backoff.
    return redis.Redis.from_url(url, socket_timeout=2, retry=Retry(NoBackoff(), 0))


def _upstash_client(server: UpstashRestServer, **kwargs) -> UpstashRedis:
    kwargs.setdefault("rest_retries", 0)
    return UpstashRedis(server.url, server.token, allow_telemetry=False,
                        **kwargs)


def _post(server: UpstashRestServer, path: str, body, timeout: float = 10,
          **headers: str) -> httpx.Response:
    headers.setdefault("Authorization", f"Bearer {server.token}")
    return httpx.post(server.url + path, json=body, headers=headers,
                      timeout=timeout)


def _multi_calls(client: redis.Redis) -> int:
    """How many MULTI commands Redis itself has run (INFO commandstats)."""
    stats = client.info("commandstats")
    return stats.get("cmdstat_multi", {}).get("calls", 0)


@pytest.fixture
def direct(redis_url) -> Iterator[redis.Redis]:
    """redis-py straight to the session Redis, to check what really happened."""
    client = _redis_client(redis_url)
    yield client
    client.close()


@pytest.fixture(params=["base64", None], ids=["base64", "plain"])
def upstash(request, upstash_server) -> Iterator[UpstashRedis]:
    """The real upstash-redis client, in both REST encodings."""
    client = _upstash_client(upstash_server, rest_encoding=request.param)
    yield client
    client.close()


# ---------------------------------------------------------------------------
# RedisServer
# ---------------------------------------------------------------------------


def test_redis_round_trip(direct):
    assert direct.set("greeting", b"\x00hello\xff")
    assert direct.get("greeting") == b"\x00hello\xff"


def test_redis_url_fixture_starts_empty(direct):
    assert direct.dbsize() == 0
    direct.set("left-behind", "1")  # must not leak into the next test


def test_redis_stop_and_restart_on_same_port(redis_server, redis_url, direct):
    port = redis_server.port
    assert direct.ping()

    redis_server.stop()
    assert not redis_server.running
    with pytest.raises(redis.ConnectionError):
        direct.ping()

    redis_server.start()
    assert redis_server.port == port
    assert redis_server.url == redis_url
    assert direct.ping()  # the same client reconnects by itself


def test_redis_server_context_manager_stops_process():
    with RedisServer() as server:
        client = _redis_client(server.url)
        assert client.ping()
    assert not server.running
    with pytest.raises(redis.ConnectionError):
        client.ping()
    client.close()


# ---------------------------------------------------------------------------
# UpstashRestServer through the upstash-redis client
# ---------------------------------------------------------------------------


def test_set_get(upstash):
    assert upstash.set("k", "v") is True
    assert upstash.get("k") == "v"
    assert upstash.get("missing") is None


def test_incr(upstash):
    assert upstash.incr("n") == 1
    assert upstash.incrby("n", 41) == 42


def test_lpush_lrange(upstash):
    assert upstash.lpush("list", "a", "b", "c") == 3
    assert upstash.lrange("list", 0, -1) == ["c", "b", "a"]


def test_hset_hgetall(upstash):
    assert upstash.hset("h", values={"f1": "1", "f2": "two"}) == 2
    assert upstash.hgetall("h") == {"f1": "1", "f2": "two"}


def test_eval_with_keys_and_args(upstash):
    script = ("redis.call('SET', KEYS[1], ARGV[1]); "
              "return {KEYS[1], redis.call('GET', KEYS[1]), "
              "redis.call('INCRBY', KEYS[2], ARGV[2])}")
    result = upstash.eval(script, keys=["s", "c"], args=["val", "7"])
    assert result == ["s", "val", 7]


def test_script_load_and_evalsha(upstash):
    sha = upstash.script_load("return ARGV[1] .. KEYS[1]")
    assert len(sha) == 40
    assert upstash.evalsha(sha, keys=["!"], args=["hi"]) == "hi!"


def test_pipeline_runs_in_order_without_multi(upstash, direct):
    multis = _multi_calls(direct)
    pipe = upstash.pipeline()
    pipe.set("p", "1")
    pipe.incr("p")
    pipe.get("p")
    assert pipe.exec() == [True, 2, "2"]
    assert _multi_calls(direct) == multis


def test_multi_exec_runs_in_a_transaction(upstash, direct):
    multis = _multi_calls(direct)
    tx = upstash.multi()
    tx.set("t", "1")
    tx.incr("t")
    tx.get("t")
    assert tx.exec() == [True, 2, "2"]
    assert _multi_calls(direct) == multis + 1


def test_wrong_token_is_rejected(upstash_server):
    client = UpstashRedis(upstash_server.url, "not-the-token", rest_retries=0,
                          allow_telemetry=False)
    with pytest.raises(UpstashError, match="Unauthorized"):
        client.set("k", "v")
    client.close()
    response = httpx.post(upstash_server.url, json=["PING"])  # no header
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized"}


def test_blocking_command_is_refused(upstash, upstash_server):
    with pytest.raises(UpstashError, match="blocking commands are not supported"):
        upstash.execute(["BLPOP", "queue", "0"])
    response = _post(upstash_server, "/", ["BRPOP", "queue", "1"])
    assert response.status_code == 400
    assert upstash_server.commands == 0


def test_redis_errors_become_http_400(upstash, upstash_server):
    upstash.set("s", "text")
    with pytest.raises(UpstashError, match="^ERR value is not an integer"):
        upstash.incr("s")
    response = _post(upstash_server, "/", ["LPUSH", "s", "x"])
    assert response.status_code == 400
    assert response.json()["error"].startswith("WRONGTYPE ")


def test_commands_counter(upstash, upstash_server):
    upstash.set("a", "1")
    assert (upstash_server.commands, upstash_server.requests) == (1, 1)
    pipe = upstash.pipeline()
    pipe.incr("a")
    pipe.incr("a")
    pipe.get("a")
    pipe.exec()
    assert (upstash_server.commands, upstash_server.requests) == (4, 2)
    upstash_server.reset_counts()
    assert (upstash_server.commands, upstash_server.requests) == (0, 0)


def test_delay_seconds_slows_each_request(upstash_server):
    client = _upstash_client(upstash_server)
    client.set("k", "v")  # warm the connection
    upstash_server.delay_seconds = 0.3
    started = time.monotonic()
    assert client.get("k") == "v"
    assert time.monotonic() - started >= 0.3
    client.close()
    # A client whose timeout is shorter than the delay gives up.
    with pytest.raises(httpx.ReadTimeout):
        _post(upstash_server, "/", ["GET", "k"], timeout=0.1)


def test_fail_next_fails_exactly_that_many_requests(upstash, upstash_server):
    upstash_server.fail_next = 1
    with pytest.raises(UpstashError):
        upstash.set("k", "v")
    assert upstash.get("k") is None  # the failed request did not run
    assert upstash.set("k", "v") is True
    assert upstash_server.fail_next == 0
    assert upstash_server.commands == 2

    upstash_server.fail_next = 1
    response = _post(upstash_server, "/", ["PING"])
    assert response.status_code == 500
    assert "error" in response.json()


# ---------------------------------------------------------------------------
# UpstashRestServer wire format (raw HTTP)
# ---------------------------------------------------------------------------


def test_plain_and_base64_encodings_on_the_wire(upstash_server):
    assert _post(upstash_server, "/", ["SET", "k", "v"]).json() == {"result": "OK"}
    plain = _post(upstash_server, "/", ["MGET", "k", "nope"]).json()
    assert plain == {"result": ["v", None]}
    b64 = _post(upstash_server, "/", ["MGET", "k", "nope"],
                **{"Upstash-Encoding": "base64"}).json()
    assert b64 == {"result": [base64.b64encode(b"v").decode(), None]}
    ok = _post(upstash_server, "/", ["SET", "k", "w"], **{"Upstash-Encoding": "base64"})
    assert ok.json() == {"result": "OK"}  # OK is never encoded
    assert _post(upstash_server, "/", ["INCR", "n"]).json() == {"result": 1}


def test_pipeline_reports_errors_per_command(upstash_server):
    body = [["SET", "k", "v"], ["INCR", "k"], ["BLPOP", "q", "0"], ["GET", "k"]]
    response = _post(upstash_server, "/pipeline", body)
    assert response.status_code == 200
    assert response.json() == [
        {"result": "OK"},
        {"error": "ERR value is not an integer or out of range"},
        {"error": "ERR blocking commands are not supported"},
        {"result": "v"},
    ]
    assert upstash_server.commands == 3


def test_multi_exec_with_queue_error_runs_nothing(upstash_server, direct):
    response = _post(upstash_server, "/multi-exec", [["SET", "k", "v"], ["NOPE"]])
    assert response.status_code == 400
    assert response.json()["error"].startswith("EXECABORT")
    assert direct.exists("k") == 0


def test_path_form_with_url_encoded_segments(upstash_server, direct):
    auth = {"Authorization": f"Bearer {upstash_server.token}"}
    response = httpx.get(f"{upstash_server.url}/set/a%2Fb/hello%20world", headers=auth)
    assert response.json() == {"result": "OK"}
    assert direct.get("a/b") == b"hello world"
    # The token may also travel as the _token query parameter.
    url = f"{upstash_server.url}/get/a%2Fb?_token={upstash_server.token}"
    assert httpx.get(url).json() == {"result": "hello world"}


def test_path_form_post_body_is_the_last_argument(upstash_server, direct):
    auth = {"Authorization": f"Bearer {upstash_server.token}",
            "Upstash-Encoding": "base64"}
    response = httpx.post(f"{upstash_server.url}/set/bin?EX=100",
                          content=b"\xff\x00binary", headers=auth)
    assert response.json() == {"result": "OK"}
    response = httpx.get(f"{upstash_server.url}/get/bin", headers=auth)
    assert base64.b64decode(response.json()["result"]) == b"\xff\x00binary"
    assert 0 < direct.ttl("bin") <= 100


def test_rest_server_recovers_when_redis_restarts(upstash, upstash_server,
                                                  redis_server):
    upstash.set("k", "v")
    redis_server.stop()
    with pytest.raises(UpstashError, match="redis unavailable"):
        upstash.get("k")
    redis_server.start()
    assert upstash.set("k", "again") is True  # data loss across restart is fine
    assert upstash.get("k") == "again"


def test_rest_server_context_manager_stops_listening(redis_url):
    with UpstashRestServer(redis_url, token="t0k3n") as server:
        assert server.token == "t0k3n"
        assert _post(server, "/", ["PING"]).json() == {"result": "PONG"}
    with pytest.raises(httpx.ConnectError):
        _post(server, "/", ["PING"])
