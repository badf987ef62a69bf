"""Delivery with httpx.MockTransport: exact request bytes, retries, isolation, concurrency, ledger states."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable

import httpx
import pandas as pd
import pytest

from uploader.delivery import GraphClient, deliver, preflight
from uploader.delivery import sender as sender_module
from uploader.delivery.sender import Sender
from uploader.ledger import StoredEvent
from uploader.delivery.classify import Action, classify
from uploader.delivery.graph import GraphError
from uploader.delivery.retry import Retrier, RetryPolicy
from uploader.errors import CredentialsError, EndpointUnreachable
from uploader.ledger import FAILED, PENDING, SENT, Ledger
from uploader.settings import MetaSettings, Secret

TOKEN = "EAAtoken-that-must-stay-secret"
NOW = 1_795_168_800.0
Handler = Callable[[httpx.Request], httpx.Response]


def meta(**kw: object) -> MetaSettings:
    base = {"access_token": Secret(TOKEN), "dataset_id": "42", "graph_url": "https://graph.example",
            "batch_size": 2, "concurrency": 1, "retry_base_seconds": 1.0}
    return MetaSettings(**{**base, **kw})  # type: ignore[arg-type]


def client(handler: Handler, **kw: object) -> GraphClient:
    return GraphClient(meta(**kw), transport=httpx.MockTransport(handler))


def ids(request: httpx.Request) -> list[str]:
    return [event["event_id"] for event in json.loads(request.content)["data"]]


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"events_received": len(ids(request)), "fbtrace_id": "T"})


def graph_error(status: int, code: int, subcode: int | None = None, message: str = "Invalid parameter") -> httpx.Response:
    error = {"message": message, "code": code, "fbtrace_id": "TR"}
    if subcode:
        error["error_subcode"] = subcode
    return httpx.Response(status, json={"error": error})


def fill(ledger: Ledger, n: int) -> None:
    rows = [{"event_id": f"e{i:04d}", "event_name": "Lead", "event_time": int(NOW) - 1000 + i,
             "action_source": "system_generated", "payload": json.dumps({"event_id": f"e{i:04d}"})}
            for i in range(n)]
    ledger.record("42", "s", pd.DataFrame(rows), NOW)


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'l.db'}")
    fill(ledger, 3)
    return ledger


def run(ledger: Ledger, handler: Handler, sleeps: list[float] | None = None, **kw: object):
    settings = meta(**kw)
    with GraphClient(settings, transport=httpx.MockTransport(handler)) as graph:
        return deliver(ledger, graph, settings, lambda: NOW, sleep=(sleeps if sleeps is not None else []).append)


@pytest.mark.parametrize(("status", "code", "subcode", "action"), [
    (400, 190, None, Action.STOP), (400, 102, None, Action.STOP), (403, 10, None, Action.STOP),
    (400, 200, None, Action.STOP), (400, 294, None, Action.STOP), (400, 100, 33, Action.STOP),
    (500, 1, None, Action.RETRY), (503, 2, None, Action.RETRY), (400, 4, None, Action.RETRY),
    (400, 17, 2446079, Action.RETRY), (400, 341, None, Action.RETRY), (400, 613, None, Action.RETRY),
    (400, 80000, None, Action.RETRY), (400, 80014, None, Action.RETRY), (502, None, None, Action.RETRY),
    (0, None, None, Action.RETRY), (429, None, None, Action.RETRY),
    (400, 100, 2804003, Action.ISOLATE), (400, 100, 2804050, Action.ISOLATE), (400, 80015, None, Action.ISOLATE),
])
def test_errors_are_classified_by_code_and_subcode(status: int, code: int | None, subcode: int | None,
                                                   action: Action) -> None:
    assert classify(status, code, subcode) is action


def test_the_request_carries_the_token_in_the_body_never_the_url() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok(request)

    with client(handler, test_event_code="TEST77") as graph:
        graph.send(['{"event_id":"a"}', '{"event_id":"b"}'])
    request = seen[0]
    assert str(request.url) == "https://graph.example/v25.0/42/events"
    assert request.headers["content-type"] == "application/json"
    assert request.content == (b'{"data":[{"event_id":"a"},{"event_id":"b"}],'
                               b'"access_token": "EAAtoken-that-must-stay-secret", "test_event_code": "TEST77"}')


def test_preflight_reads_the_dataset_with_the_token_in_a_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "42"})

    with client(handler) as graph:
        assert preflight(graph) is None
    assert str(seen[0].url) == "https://graph.example/v25.0/42?fields=id%2Cname"
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_preflight_stops_on_a_bad_token_and_goes_on_when_meta_is_busy() -> None:
    with client(lambda r: graph_error(400, 190, message=f"bad token {TOKEN}")) as graph, \
            pytest.raises(CredentialsError) as caught:
        preflight(graph)
    assert str(caught.value).startswith("Meta refused the request: the access token is invalid or expired")
    assert TOKEN not in str(caught.value)
    with client(lambda r: graph_error(503, 2, message="busy")) as graph:
        assert preflight(graph) == "could not check the token and dataset first (HTTP 503, code 2: busy); going on"


def test_preflight_names_an_unreachable_endpoint() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with client(refuse) as graph, pytest.raises(EndpointUnreachable, match="cannot reach https://graph.example"):
        preflight(graph)


def test_confirmed_batches_are_marked_sent_oldest_first(ledger: Ledger) -> None:
    seen: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(ids(request))
        return ok(request)

    result = run(ledger, handler)
    assert seen == [["e0000", "e0001"], ["e0002"]]
    assert (result.sent, result.requests, result.pending_left) == (3, 2, 0)
    assert ledger.count("42", SENT) == 3


def test_5xx_and_throttling_are_retried_with_growing_jittered_backoff(ledger: Ledger) -> None:
    script = iter([graph_error(503, 2), graph_error(400, 17, 2446079), None, None])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(script) or ok(request)

    sleeps: list[float] = []
    result = run(ledger, handler, sleeps)
    assert result.sent == 3 and result.retries == 2 and result.batches_failed == 0
    assert 0 <= sleeps[0] <= 1.0 and 0 <= sleeps[1] <= 2.0 and len(sleeps) == 2


def test_backoff_doubles_up_to_the_cap_and_respects_the_run_budget() -> None:
    clock = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    class MaxRandom(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    retrier = Retrier(RetryPolicy(max_attempts=6, base_seconds=1, max_seconds=4, budget_seconds=9),
                      lambda: clock[0], sleep, MaxRandom())
    answer = retrier.call(lambda: GraphError(500, 1, None, "down"))
    assert sleeps == [1, 2, 4]  # the next wait (4 s) would pass the 9 s budget: give up, leave pending
    assert isinstance(answer, GraphError) and answer.message == "down"


def test_persistent_throttling_halts_the_pass_and_leaves_everything_pending(ledger: Ledger) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return graph_error(400, 17, 2446079, "User request limit reached")

    result = run(ledger, handler, max_attempts=3)
    assert len(calls) == 3  # one batch, three attempts, then no more batches
    assert result.sent == 0 and result.pending_left == 3
    assert result.halted == ("Meta is throttling this account (HTTP 400, code 17/2446079: User request limit "
                             "reached): stopped sending; the rest stays pending for the next run")


def test_one_bad_event_in_1000_is_isolated_in_about_log2_requests(tmp_path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'big.db'}")
    fill(ledger, 1000)
    bad = "e0617"
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        batch = ids(request)
        calls.append(len(batch))
        if bad in batch:
            return graph_error(400, 100, 2804019, f"Event {batch.index(bad)}: invalid lead_id")
        return ok(request)

    result = run(ledger, handler, batch_size=1000)
    assert result.sent == 999 and result.failed == 1 and result.pending_left == 0
    assert len(calls) - 1 <= 20  # 2 * log2(1000) extra requests at most
    assert ledger.count("42", FAILED) == 1
    assert result.rejections[0].event_id == bad
    assert result.rejections[0].message.startswith("HTTP 400, code 100/2804019: Event ")
    assert result.rejections[0].fbtrace_id == "TR"


def test_a_run_names_the_first_events_meta_refused_and_counts_them_all(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sender_module, "REJECTIONS_KEPT", 2)
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'l.db'}")
    fill(ledger, 12)
    bad = {"e0001", "e0005", "e0009"}

    def handler(request: httpx.Request) -> httpx.Response:
        batch = ids(request)
        first_bad = next((i for i, event_id in enumerate(batch) if event_id in bad), None)
        if first_bad is not None:
            return graph_error(400, 100, 2804019, f"Event {first_bad}: invalid lead_id")
        return ok(request)

    result = run(ledger, handler, batch_size=4)
    assert (result.sent, result.failed, ledger.count("42", FAILED)) == (9, 3, 3)
    assert [r.event_id for r in result.rejections] == ["e0001", "e0005"]


def test_new_events_left_pending_are_not_sent_again_by_the_same_runs_backlog_pass(ledger: Ledger) -> None:
    requests: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(ids(request))
        if any(event_id.startswith("bad") for event_id in requests[-1]):
            return graph_error(400, 100, 2804050, "too little customer information")
        return ok(request)

    settings = meta(batch_size=20)
    with GraphClient(settings, transport=httpx.MockTransport(handler)) as graph:
        sender = Sender(ledger, graph, settings, lambda: NOW, sleep=lambda seconds: None)
        sender.offer([StoredEvent("Lead", f"bad{i:02d}", int(NOW), json.dumps({"event_id": f"bad{i:02d}"}), 0,
                                  "system_generated", "crm") for i in range(20)])
        assert sender.backlog_size() == 3  # the earlier run's backlog; the new batch is on its way
        sender.flush()
        assert sender.backlog_size() == 3  # ten refused, ten left pending by this run: not backlog
        sender.send_backlog()
        result = sender.close()
    assert (result.failed, result.sent, ledger.count("42", PENDING)) == (10, 3, 10)
    assert [batch for batch in requests if not batch[0].startswith("bad")] == [["e0000", "e0001", "e0002"]]


def test_a_systematic_rejection_is_not_chased_event_by_event(tmp_path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'big.db'}")
    fill(ledger, 64)
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return graph_error(400, 100, 2804050, "too little customer information")

    result = run(ledger, handler, batch_size=64)
    assert result.failed == 10 and result.pending_left == 54
    assert len(calls) < 64


def test_a_bad_token_mid_run_stops_after_recording_what_was_accepted(tmp_path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'l.db'}")
    fill(ledger, 6)
    answers = iter([None, graph_error(400, 190, message=f"expired {TOKEN}")])
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return next(answers) or ok(request)

    with pytest.raises(CredentialsError) as caught:
        run(ledger, handler)
    assert len(calls) == 2
    assert TOKEN not in str(caught.value)
    assert ledger.count("42", SENT) == 2 and ledger.count("42", PENDING) == 4


def test_several_batches_are_in_flight_at_once(tmp_path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'l.db'}")
    fill(ledger, 8)
    together = threading.Barrier(4, timeout=10)  # breaks (and fails the test) unless 4 requests overlap

    def handler(request: httpx.Request) -> httpx.Response:
        together.wait()
        return ok(request)

    result = run(ledger, handler, concurrency=4)
    assert result.sent == 8 and result.requests == 4
    assert ledger.count("42", SENT) == 8


def test_a_partial_receipt_is_retried_and_then_left_pending(ledger: Ledger) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"events_received": 1, "fbtrace_id": "T"})

    result = run(ledger, handler, max_attempts=2)
    assert result.sent == 0 and result.pending_left == 3
    assert result.errors == ["HTTP 200, no code: Meta received 1 of 2 events (fbtrace_id T)"]


def test_failed_events_are_requeued_but_never_expired_ones(ledger: Ledger) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return graph_error(400, 100, 2804019, "invalid lead_id")

    run(ledger, handler, batch_size=1)
    assert ledger.count("42", FAILED) == 3
    assert [(f.event_id, f.last_error) for f in ledger.failed_events("42")][:1] == [
        ("e0000", "HTTP 400, code 100/2804019: invalid lead_id")]
    assert ledger.requeue_failed("42", NOW) == (3, 0)
    assert ledger.count("42", PENDING) == 3
    run(ledger, handler, batch_size=1)
    assert ledger.requeue_failed("42", NOW + 8 * 86400) == (0, 3)
    assert ledger.count("42", PENDING) == 0


def test_fresh_batches_go_to_the_journal_and_backlog_batches_are_updated_in_place(ledger: Ledger) -> None:
    from uploader.delivery import Sender
    from uploader.ledger import StoredEvent
    from uploader.ledger.schema import journal

    def journaled() -> list[str]:
        with ledger.engine.connect() as conn:
            return [row[0] for row in conn.execute(journal.select().with_only_columns(journal.c.event_id))]

    sender = Sender(ledger, client(ok), meta(), clock=lambda: NOW, sleep=lambda s: None)
    sender.offer([StoredEvent("Lead", f"new{i}", int(NOW), f'{{"event_id":"new{i}"}}', 0, "website", "s")
                  for i in range(2)])
    sender.flush()
    assert journaled() == ["new0", "new1"]
    held = next(ledger.pending("42", 2))  # the fixture's backlog, as send_backlog hands it over
    assert journaled() == []  # reading the pending events folded the journal first
    sender._submit(held)
    sender.flush()
    assert journaled() == []  # the backlog's outcome went straight to its rows
    with ledger.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT event_id FROM events WHERE status = 'sent' ORDER BY event_id"
                                    ).scalars().all() == ["e0000", "e0001", "new0", "new1"]
    assert sender.close().sent == 4
    assert ledger.count("42", SENT) == 4 and ledger.count("42", PENDING) == 1
