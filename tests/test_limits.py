"""Plans (shared.plans) and plan limits as atomic counters (shared.limits), on every
backend the queue has: SQLite, a real redis-server, and the Upstash REST stand-in."""
from __future__ import annotations

import random
import sqlite3
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import datetime, timezone
from multiprocessing import get_context

import pytest

from shared.limits import USAGE_DAYS, Limiter, day_label, window
from shared.plans import DEFAULT_PLANS, Plan, load_plans, smallest_first
from shared.queue import limit_scripts
from shared.queue.keys import Keys
from shared.queue.redis import RedisQueue
from shared.queue.sqlite import SqliteQueue
from shared.queue.transports import RedisProtocol, UpstashRest
from shared.settings import Settings, SettingsError, price_variable
from tests.queues import Clock

ACCOUNT = "acct_1"
DAY = 86_400
REDIS_BACKENDS = pytest.mark.parametrize("backend", ["redis", "upstash"])


@pytest.fixture
def limiter(new_queue):
    limiter = Limiter.for_queue(new_queue())
    yield limiter
    limiter.close()


def sqlite_limiter(tmp_path, clock: Clock) -> Limiter:
    return Limiter.for_queue(SqliteQueue(tmp_path / "queue.sqlite3", clock=clock))


def utc(*date) -> float:
    return datetime(*date, tzinfo=timezone.utc).timestamp()


# --- plans -----------------------------------------------------------------------------

def test_the_default_plans_rise_from_free_to_team():
    plans = load_plans(None)
    assert list(plans) == ["free", "pro", "team"] and plans == DEFAULT_PLANS
    assert plans["free"] == Plan("free", 3, 20, 60, 200_000)
    for lower, higher in [("free", "pro"), ("pro", "team")]:
        for field in ("repositories", "ingests_per_day", "queries_per_minute",
                      "embeddings_per_month"):
            assert getattr(plans[higher], field) > getattr(plans[lower], field)
    assert load_plans("  ") == DEFAULT_PLANS


def test_plans_json_overrides_limits_and_adds_plans():
    plans = load_plans('{"pro": {"repositories": 50, "queries_per_minute": null},'
                       ' "enterprise": {"repositories": null, "ingests_per_day": 5000,'
                       ' "queries_per_minute": null, "embeddings_per_month": null}}')
    assert plans["pro"] == Plan("pro", 50, 200, None, 2_000_000)  # the rest kept
    assert plans["enterprise"] == Plan("enterprise", None, 5000, None, None)
    assert plans["free"] == DEFAULT_PLANS["free"]
    assert DEFAULT_PLANS["pro"].repositories == 30  # the defaults are not changed


def test_plans_go_smallest_first_and_each_paid_plan_can_have_a_price():
    plans_json = ('{"starter": {"repositories": 10, "ingests_per_day": 50,'
                  ' "queries_per_minute": 100, "embeddings_per_month": 500000},'
                  ' "team-plus": {"repositories": null, "ingests_per_day": 5000,'
                  ' "queries_per_minute": null, "embeddings_per_month": null}}')
    assert smallest_first(load_plans(plans_json)) == ["free", "starter", "pro", "team",
                                                      "team-plus"]
    assert price_variable("team-plus") == "STRIPE_PRICE_TEAM_PLUS"
    settings = Settings.from_env({"PLANS": plans_json, "STRIPE_PRICE_STARTER": "price_s",
                                  "STRIPE_PRICE_TEAM_PLUS": "price_tp",
                                  "STRIPE_PRICE_PRO": "price_p", "STRIPE_PRICE_FREE": "price_f"})
    assert dict(settings.stripe_prices) == {"starter": "price_s", "pro": "price_p",
                                            "team-plus": "price_tp"}  # free is never sold
    with pytest.raises(SettingsError, match="PLANS is not valid JSON"):  # said as a setting
        Settings.from_env({"PLANS": "{", "STRIPE_PRICE_TEAM": "price_t"})


def test_a_plan_names_its_maximum_by_limit():
    free = DEFAULT_PLANS["free"]
    assert [free.maximum(name) for name in ("ingests", "queries", "embeddings")] == [
        20, 60, 200_000]
    with pytest.raises(ValueError, match="unknown limit 'repos'"):
        free.maximum("repos")


@pytest.mark.parametrize("raw, message", [
    ("{not json", "PLANS is not valid JSON"),
    ("[1, 2]", "must be a JSON object of plan name -> limits, not list"),
    ('{"pro": 5}', r"PLANS\['pro'\] must be an object of limits, not int"),
    ('{"pro": {"repos": 5}}', r"unknown limit\(s\) repos; known: repositories"),
    ('{"pro": {"repositories": -1}}', r"PLANS\['pro'\].repositories must be a whole number"),
    ('{"pro": {"repositories": 2.5}}', "not 2.5"),
    ('{"pro": {"repositories": "10"}}', "not '10'"),
    ('{"pro": {"repositories": true}}', "not True"),
    ('{"gold": {"repositories": 5}}', "new plan and must give every limit; missing: "
                                      "ingests_per_day, queries_per_minute"),
    ('{"": {}}', "plan name '' must be"),
    ('{"a b": {}}', "plan name 'a b' must be"),
])
def test_bad_plans_json_says_what_is_wrong(raw, message):
    with pytest.raises(ValueError, match=message):
        load_plans(raw)


# --- limits: the contract on every backend ----------------------------------------------

def test_the_nth_attempt_is_allowed_and_the_next_refused(limiter):
    verdicts = [limiter.check(ACCOUNT, "ingests", 5) for _ in range(6)]
    assert [v.allowed for v in verdicts] == [True] * 5 + [False]
    assert [v.used for v in verdicts] == [1, 2, 3, 4, 5, 5]
    refused = verdicts[-1]
    assert refused.limit == 5 and refused.window == "day"
    assert 1 <= refused.retry_after <= DAY


def test_refused_attempts_are_not_counted(limiter):
    for _ in range(3):
        limiter.check(ACCOUNT, "queries", 3)
    for _ in range(10):
        assert not limiter.check(ACCOUNT, "queries", 3).allowed
    assert limiter.peek(ACCOUNT, "queries", 3).used == 3
    assert limiter.check(ACCOUNT, "queries", 4).allowed  # a higher plan: room for one
    assert [day["queries"] for day in limiter.usage(ACCOUNT, 1)] == [4]


def test_an_amount_counts_whole_or_not_at_all(limiter):
    assert limiter.check(ACCOUNT, "embeddings", 1000, amount=600).used == 600
    too_much = limiter.check(ACCOUNT, "embeddings", 1000, amount=401)
    assert not too_much.allowed and too_much.used == 600
    exact = limiter.check(ACCOUNT, "embeddings", 1000, amount=400)
    assert exact.allowed and exact.used == 1000 and exact.window == "month"
    assert not limiter.check(ACCOUNT, "embeddings", 1000).allowed


def test_unlimited_is_always_allowed_and_still_metered(limiter):
    # A month's window: a minute's could roll over between the checks (Redis keeps the
    # time there, no clock can be set), and the count would start again.
    verdicts = [limiter.check(ACCOUNT, "embeddings", None, amount=50) for _ in range(100)]
    assert all(v.allowed and v.limit is None for v in verdicts)
    assert verdicts[-1].used == 5000
    assert limiter.peek(ACCOUNT, "embeddings", None).allowed
    assert limiter.usage(ACCOUNT, 1)[0]["embeddings"] == 5000


def test_add_meters_past_the_maximum_and_peek_sees_it(limiter):
    assert limiter.add(ACCOUNT, "embeddings", 150) == 150
    assert limiter.add(ACCOUNT, "embeddings", 100) == 250  # work already done: never refused
    assert limiter.add(ACCOUNT, "embeddings", 0) == 250
    spent = limiter.peek(ACCOUNT, "embeddings", 200)
    assert not spent.allowed and spent.used == 250 and spent.window == "month"
    assert limiter.peek(ACCOUNT, "embeddings", 251).allowed
    assert limiter.peek(ACCOUNT, "embeddings", 251).used == 250  # peek counts nothing
    assert not limiter.check(ACCOUNT, "embeddings", 300, amount=51).allowed


def test_limits_and_accounts_count_apart(limiter):
    limiter.check("a", "ingests", 1)
    assert not limiter.check("a", "ingests", 1).allowed
    assert limiter.check("b", "ingests", 1).allowed
    assert limiter.check("a", "queries", 1).allowed
    assert limiter.check("a:b", "ingests", 1).allowed  # a separator in an id is only text


def test_retry_after_is_within_the_window(limiter):
    for limit, longest in [("queries", 60), ("ingests", DAY), ("embeddings", 31 * DAY)]:
        verdict = limiter.check(ACCOUNT, limit, 0)
        assert not verdict.allowed and verdict.used == 0
        assert isinstance(verdict.retry_after, int) and 1 <= verdict.retry_after <= longest


def test_usage_is_per_utc_day_oldest_first(limiter):
    limiter.check(ACCOUNT, "ingests", None, amount=2)
    limiter.check(ACCOUNT, "queries", 100)
    limiter.add(ACCOUNT, "embeddings", 1234)
    limiter.add("other", "embeddings", 9)
    days = limiter.usage(ACCOUNT)
    assert len(days) == 30
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    # the store's clock and this one may straddle midnight: a day either way
    assert days[-1]["day"] in {today, day_label(int(time.time() // DAY) - 1),
                               day_label(int(time.time() // DAY) + 1)}
    assert days[-1] == {"day": days[-1]["day"], "ingests": 2, "queries": 1,
                        "embeddings": 1234}
    assert all(day == {"day": day["day"], "ingests": 0, "queries": 0, "embeddings": 0}
               for day in days[:-1])
    labels = [day["day"] for day in days]
    assert labels == sorted(labels) and len(set(labels)) == 30
    assert len(limiter.usage(ACCOUNT, USAGE_DAYS)) == USAGE_DAYS


@pytest.mark.parametrize("call, message", [
    (lambda l: l.check(ACCOUNT, "repos", 1), "unknown limit 'repos'"),
    (lambda l: l.check("", "queries", 1), "account_id must be a non-empty string"),
    (lambda l: l.check(ACCOUNT, "queries", 1, amount=0), "amount must be a whole number >= 1"),
    (lambda l: l.check(ACCOUNT, "queries", -1), "maximum must be a whole number >= 0 or None"),
    (lambda l: l.add(ACCOUNT, "embeddings", -5), "amount must be a whole number >= 0"),
    (lambda l: l.add(ACCOUNT, "embeddings", 1.5), "not 1.5"),
    (lambda l: l.usage(ACCOUNT, 0), "days must be 1..40"),
    (lambda l: l.usage(ACCOUNT, 41), "days must be 1..40"),
])
def test_bad_arguments_are_refused(limiter, call, message):
    with pytest.raises(ValueError, match=message):
        call(limiter)


def test_concurrent_checks_allow_exactly_the_maximum(limiter):
    start = threading.Barrier(16)

    def attempt(i: int) -> bool:
        if i < 16:
            start.wait()
        return limiter.check(ACCOUNT, "ingests", 37).allowed

    with ThreadPoolExecutor(max_workers=16) as pool:
        allowed = sum(pool.map(attempt, range(200)))
    assert allowed == 37
    assert limiter.peek(ACCOUNT, "ingests", 37).used == 37
    assert limiter.usage(ACCOUNT, 1)[0]["ingests"] == 37


def test_concurrent_amounts_never_pass_the_maximum(limiter):
    amounts = [random.Random(i).randint(1, 9) for i in range(150)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        verdicts = list(pool.map(
            lambda a: limiter.check(ACCOUNT, "embeddings", 200, amount=a), amounts))
    counted = sum(a for a, v in zip(amounts, verdicts) if v.allowed)
    assert counted == limiter.peek(ACCOUNT, "embeddings", 200).used
    assert 200 - 9 < counted <= 200


_together = None  # in each spending process: the barrier both pass before spending


def _meet_at(barrier) -> None:
    global _together
    _together = barrier


def _spend(spec: dict) -> int:
    """In a process of its own: checks on the shared counter once both processes are
    ready; how many were allowed."""
    keys = Keys(prefix=spec["prefix"])
    if spec["backend"] == "sqlite":
        queue = SqliteQueue(spec["path"])
    elif spec["backend"] == "redis":
        queue = RedisQueue(RedisProtocol(spec["url"]), keys=keys)
    else:
        queue = RedisQueue(UpstashRest(spec["url"], spec["token"]), keys=keys)
    limiter = Limiter.for_queue(queue)
    try:
        _together.wait(timeout=60)
        return sum(limiter.check(ACCOUNT, "ingests", spec["maximum"]).allowed
                   for _ in range(spec["attempts"]))
    finally:
        limiter.close()
        queue.close()


def test_two_processes_allow_exactly_the_maximum(new_queue, backend, request):
    queue = new_queue()
    spec = {"backend": backend, "prefix": getattr(queue, "keys", Keys()).prefix,
            "maximum": 120, "attempts": 100}
    if backend == "sqlite":
        spec["path"] = str(queue.path)
    elif backend == "redis":
        spec["url"] = request.getfixturevalue("redis_url")
    else:
        upstash = request.getfixturevalue("upstash_server")
        spec.update(url=upstash.url, token=upstash.token)
    spawn = get_context("spawn")  # a fork would copy this process's threads and sockets
    with ProcessPoolExecutor(max_workers=2, mp_context=spawn, initializer=_meet_at,
                             initargs=(spawn.Barrier(2),)) as pool:
        # the barrier holds each task until the other is running: two processes, together
        counts = list(pool.map(_spend, [spec, spec]))
    assert sum(counts) == 120
    assert Limiter.for_queue(queue).peek(ACCOUNT, "ingests", 120).used == 120


# --- SQLite: windows on the queue's (injectable) clock ----------------------------------

def test_windows_reset_at_the_minute_the_utc_day_and_the_month(tmp_path):
    clock = Clock(utc(2027, 1, 31, 23, 59, 30))
    limiter = sqlite_limiter(tmp_path, clock)
    for limit, window_ in [("queries", "minute"), ("ingests", "day"), ("embeddings", "month")]:
        assert limiter.check(ACCOUNT, limit, 1).allowed
        refused = limiter.check(ACCOUNT, limit, 1)
        # 30 s before midnight at the end of January: every window ends together
        assert not refused.allowed and refused.retry_after == 30 and refused.window == window_
    clock.advance(29.5)
    assert limiter.check(ACCOUNT, "queries", 1).retry_after == 1  # 0.5 s left: rounded up
    clock.advance(0.5)  # 2027-02-01 00:00:00
    for limit in ("queries", "ingests", "embeddings"):
        fresh = limiter.check(ACCOUNT, limit, 1)
        assert fresh.allowed and fresh.used == 1
    assert limiter.peek(ACCOUNT, "queries", 5).retry_after == 60
    assert limiter.peek(ACCOUNT, "ingests", 5).retry_after == DAY
    assert limiter.peek(ACCOUNT, "embeddings", 5).retry_after == 28 * DAY  # February
    clock.advance(DAY)
    assert limiter.check(ACCOUNT, "ingests", 5).used == 1
    assert limiter.check(ACCOUNT, "embeddings", 5).used == 2  # the same month


def test_the_month_ends_at_the_calendar_month(tmp_path):
    clock = Clock(utc(2028, 2, 10))  # a leap year
    limiter = sqlite_limiter(tmp_path, clock)
    assert limiter.check(ACCOUNT, "embeddings", None).retry_after == 20 * DAY
    clock.now = utc(2027, 12, 31, 12)
    assert limiter.check(ACCOUNT, "embeddings", None).retry_after == DAY // 2
    clock.now = utc(2028, 1, 1)
    assert limiter.check(ACCOUNT, "embeddings", None).used == 1


def test_usage_moves_with_the_days_and_old_days_are_dropped(tmp_path):
    clock = Clock(utc(2027, 3, 1, 10))
    limiter = sqlite_limiter(tmp_path, clock)
    limiter.check(ACCOUNT, "queries", 10, amount=3)
    clock.advance(DAY)
    limiter.check(ACCOUNT, "ingests", 10)
    limiter.add(ACCOUNT, "embeddings", 7)
    assert limiter.usage(ACCOUNT, 3) == [
        {"day": "2027-02-28", "ingests": 0, "queries": 0, "embeddings": 0},
        {"day": "2027-03-01", "ingests": 0, "queries": 3, "embeddings": 0},
        {"day": "2027-03-02", "ingests": 1, "queries": 0, "embeddings": 7},
    ]
    clock.advance((USAGE_DAYS + 1) * DAY)
    limiter.add("someone else", "queries", 1)  # any write sweeps what Redis would expire
    db = sqlite3.connect(tmp_path / "queue.sqlite3")
    try:
        assert db.execute("SELECT account_id, day FROM usage_days").fetchall() == [
            ("someone else", "2027-04-12")]
        assert db.execute("SELECT account_id, name FROM limit_counters").fetchall() == [
            ("someone else", "queries")]
    finally:
        db.close()


def test_limits_share_the_queue_file_and_survive_a_reopen(tmp_path):
    clock = Clock()
    queue = SqliteQueue(tmp_path / "queue.sqlite3", clock=clock)
    first = Limiter.for_queue(queue)
    first.check(ACCOUNT, "ingests", 2)
    first.close()
    again = sqlite_limiter(tmp_path, clock)  # the tables exist: created only once
    assert again.check(ACCOUNT, "ingests", 2).used == 2
    assert queue.enqueue("https://github.com/owner/repo").created  # the queue is intact
    again.close()
    queue.close()


# --- Redis and Upstash: the server's clock, expiring keys, one command ---------------------

@REDIS_BACKENDS
def test_keys_expire_with_their_window(new_queue):
    queue = new_queue()
    limiter, keys, command = Limiter.for_queue(queue), queue.keys, queue.transport.command
    for limit, longest in [("queries", 60), ("ingests", DAY), ("embeddings", 31 * DAY)]:
        verdict = limiter.check(ACCOUNT, limit, 10)
        ttl = command("TTL", keys.limit(ACCOUNT, limit))
        assert 1 <= ttl <= longest and abs(ttl - verdict.retry_after) <= 1
    [day] = command("KEYS", keys.usage_prefix(ACCOUNT) + "*")
    assert (USAGE_DAYS * DAY) < command("TTL", day) <= (USAGE_DAYS + 1) * DAY
    calls = command("KEYS", keys.prefix + "limit_call:*")
    assert len(calls) == 3 and all(0 < command("TTL", c) <= 60 for c in calls)
    limiter.check(ACCOUNT, "queries", 0)  # a refusal writes nothing
    assert len(command("KEYS", keys.prefix + "limit_call:*")) == 3


@REDIS_BACKENDS
def test_a_counter_left_from_an_earlier_window_reads_as_zero(new_queue):
    queue = new_queue()
    limiter = Limiter.for_queue(queue)
    limiter.check(ACCOUNT, "ingests", 3)
    limiter.check(ACCOUNT, "ingests", 3)
    key = queue.keys.limit(ACCOUNT, "ingests")
    start = int(queue.transport.command("HGET", key, "start"))
    queue.transport.command("HSET", key, "start", start - DAY)  # yesterday's, not expired
    verdict = limiter.check(ACCOUNT, "ingests", 3)
    assert verdict.allowed and verdict.used == 1


@REDIS_BACKENDS
def test_a_caller_clock_far_ahead_moves_no_window(new_queue, monkeypatch):
    limiter = Limiter.for_queue(new_queue())
    limiter.check(ACCOUNT, "ingests", 1)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3 * DAY)
    assert not limiter.check(ACCOUNT, "ingests", 1).allowed


@REDIS_BACKENDS
def test_a_resent_call_counts_once(new_queue):
    """A transport resends a call whose answer was lost: the call's id finds the answer."""
    counters = Limiter.for_queue(new_queue()).counters
    first = counters.count(ACCOUNT, "ingests", 1, 1, call_id="c1")
    assert first[:2] == (True, 1)
    assert counters.count(ACCOUNT, "ingests", 1, 1, call_id="c1")[:2] == (True, 1)
    assert counters.count(ACCOUNT, "ingests", 1, 1, call_id="c2")[:2] == (False, 1)
    assert counters.usage(ACCOUNT, 1)[0][1]["ingests"] == 1


@pytest.mark.parametrize("backend", ["upstash"])
def test_each_operation_is_one_upstash_command(new_queue, upstash_server):
    limiter = Limiter.for_queue(new_queue())
    operations = {
        "check": lambda: limiter.check(ACCOUNT, "queries", 1),  # allowed, then refused
        "add": lambda: limiter.add(ACCOUNT, "embeddings", 10),
        "peek": lambda: limiter.peek(ACCOUNT, "embeddings", 100),
        "usage": lambda: limiter.usage(ACCOUNT, 30),
    }
    for operation in operations.values():  # the first call loads the script (EVAL)
        operation()
    for name, operation in [*operations.items(), ("check", operations["check"])]:
        upstash_server.reset_counts()
        operation()
        assert (upstash_server.requests, upstash_server.commands) == (1, 1), name


@pytest.mark.parametrize("backend", ["redis"])
def test_the_lua_calendar_agrees_with_python(new_queue):
    """The windows the scripts find, from 1970 to 2400, at every month's edges."""
    transport = new_queue().transport
    probe = limit_scripts.CALENDAR + """
local out = {}
for _, t in ipairs(ARGV) do
  t = tonumber(t)
  for _, kind in ipairs({'minute', 'day', 'month'}) do
    local start, finish = window(kind, t)
    out[#out + 1] = string.format('%d %d', start, finish)
  end
  out[#out + 1] = day_label(math.floor(t / DAY))
end
return out
"""
    edges = [utc(year, month, 1) for year in range(1970, 2401) for month in range(1, 13)]
    times = [t + d for t in edges for d in (-0.5, 0, 59.999)][1:]
    times += [random.Random(i).uniform(0, utc(2400, 1, 1)) for i in range(2000)]
    reply = transport.script(probe, "0" * 40, [], [repr(t) for t in times])
    expected = []
    for t in times:
        expected += [f"{s} {e}" for s, e in (window(k, t) for k in ("minute", "day", "month"))]
        expected.append(day_label(int(t // DAY)))
    assert reply == expected
