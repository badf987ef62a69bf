"""Delivery with httpx.MockTransport: exact request bytes, and what each answer does to the ledger."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pandas as pd
import pytest

from uploader.delivery import GraphClient, deliver
from uploader.errors import CredentialsError, EndpointUnreachable
from uploader.ledger import PENDING, SENT, Ledger
from uploader.settings import MetaSettings, Secret

TOKEN = "EAAtoken-that-must-stay-secret"
NOW = 1_795_168_800.0


def meta(**kw: object) -> MetaSettings:
    base = {"access_token": Secret(TOKEN), "dataset_id": "42", "graph_url": "https://graph.example",
            "batch_size": 2}
    return MetaSettings(**{**base, **kw})  # type: ignore[arg-type]


def client(handler: Callable[[httpx.Request], httpx.Response], **kw: object) -> GraphClient:
    return GraphClient(meta(**kw), transport=httpx.MockTransport(handler))


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'l.db'}")
    rows = [{"event_id": f"e{i}", "event_name": "Lead", "event_time": int(NOW) - 100 + i,
             "action_source": "system_generated", "payload": json.dumps({"event_id": f"e{i}"})} for i in range(3)]
    ledger.record("42", "s", pd.DataFrame(rows), NOW)
    return ledger


def test_the_request_carries_the_token_in_the_body_never_the_url() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"events_received": 2, "fbtrace_id": "T1"})

    with client(handler, test_event_code="TEST77") as graph:
        graph.send(['{"event_id":"a"}', '{"event_id":"b"}'])
    request = seen[0]
    assert str(request.url) == "https://graph.example/v25.0/42/events"
    assert TOKEN not in str(request.url)
    assert request.headers["content-type"] == "application/json"
    assert request.content == (b'{"data":[{"event_id":"a"},{"event_id":"b"}],'
                               b'"access_token": "EAAtoken-that-must-stay-secret", "test_event_code": "TEST77"}')


def test_confirmed_batches_are_marked_sent_with_their_trace(ledger: Ledger) -> None:
    bodies: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        return httpx.Response(200, json={"events_received": len(body["data"]), "fbtrace_id": f"T{len(bodies)}"})

    with client(handler) as graph:
        result = deliver(ledger, graph, "42", 2, lambda: NOW)
    assert [[e["event_id"] for e in b["data"]] for b in bodies] == [["e0", "e1"], ["e2"]]
    assert (result.sent, result.batches_sent, result.pending_left) == (3, 2, 0)
    assert ledger.count("42", SENT) == 3


def test_a_partial_receipt_leaves_the_batch_pending(ledger: Ledger) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"events_received": 1, "fbtrace_id": "T"})

    with client(handler) as graph:
        result = deliver(ledger, graph, "42", 2, lambda: NOW)
    assert result.sent == 1  # the last batch held one event and one was received
    assert result.errors == ["HTTP 200, no code: Meta received 1 of 2 events (fbtrace_id T)"]
    assert ledger.count("42", PENDING) == 2


def test_a_rejected_batch_stays_pending_with_metas_message(ledger: Ledger) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": {"message": "Invalid parameter", "code": 100,
                                                   "error_subcode": 2804003, "error_user_msg": "event too old",
                                                   "fbtrace_id": "TR"}})

    with client(handler) as graph:
        result = deliver(ledger, graph, "42", 2, lambda: NOW)
    assert result.sent == 0 and result.batches_failed == 2 and result.pending_left == 3
    assert result.errors[0] == "HTTP 400, code 100/2804003: event too old (fbtrace_id TR)"


def test_a_bad_token_stops_at_once_and_the_message_never_holds_it(ledger: Ledger) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(400, json={"error": {"message": f"Invalid OAuth access token {TOKEN}",
                                                   "code": 190, "fbtrace_id": "TR"}})

    with client(handler) as graph, pytest.raises(CredentialsError) as caught:
        deliver(ledger, graph, "42", 2, lambda: NOW)
    assert len(calls) == 1
    message = str(caught.value)
    assert message.startswith("Meta refused the request: the access token is invalid or expired: "
                              "create a new one and set META_ACCESS_TOKEN")
    assert TOKEN not in message and "***" in message
    assert ledger.count("42", PENDING) == 3


def test_an_unknown_dataset_is_a_credentials_problem() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": {"message": "Unsupported post request", "code": 100,
                                                   "error_subcode": 33}})

    with client(handler) as graph, pytest.raises(CredentialsError, match="check META_DATASET_ID"):
        graph.send(["{}"])


def test_an_unreachable_endpoint_before_any_send_stops_the_run(ledger: Ledger) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with client(handler) as graph, pytest.raises(EndpointUnreachable, match="cannot reach https://graph.example"):
        deliver(ledger, graph, "42", 2, lambda: NOW)
    assert ledger.count("42", PENDING) == 3


def test_a_timeout_leaves_the_batch_pending_and_goes_on(ledger: Ledger) -> None:
    answers = iter([httpx.ReadTimeout("slow"), None])

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if answer is not None:
            raise answer
        return httpx.Response(200, json={"events_received": 1, "fbtrace_id": "T"})

    with client(handler) as graph:
        result = deliver(ledger, graph, "42", 2, lambda: NOW)
    assert (result.sent, result.batches_failed, result.pending_left) == (1, 1, 2)
    assert result.errors == ["no answer from https://graph.example (ReadTimeout: slow)"]
