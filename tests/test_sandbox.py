"""The sandbox Graph API, driven over real loopback HTTP with httpx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from uploader.sandbox import SandboxServer

NOW = 1_750_000_000
DAY = 86400
TOKEN = "sandbox-secret-token"
DATASET = "123456789012345"
EVENTS_PATH = f"/v25.0/{DATASET}/events"
HASH = "a" * 64
LEAD_ID = "1234567890123456"


# One server and client for the module (reset before each test) keeps the suite fast.
@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(token=TOKEN, dataset_id=DATASET, now=lambda: NOW) as server:
        yield server


@pytest.fixture(scope="module")
def client(shared_sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_sandbox.url, timeout=5) as http:
        yield http


@pytest.fixture(autouse=True)
def sandbox(shared_sandbox: SandboxServer) -> SandboxServer:
    shared_sandbox.reset()
    return shared_sandbox


def make_event(**overrides: Any) -> dict[str, Any]:
    """A valid CRM event; keyword arguments replace (or, with None, remove) fields."""
    event: dict[str, Any] = {
        "event_name": "Lead",
        "event_time": NOW - 3600,
        "user_data": {"em": HASH, "ph": [HASH, "b" * 64]},
        "action_source": "system_generated",
        "event_id": "crm-1",
        "custom_data": {"event_source": "crm", "lead_event_source": "Acme CRM"},
    }
    event.update(overrides)
    return {key: value for key, value in event.items() if value is not None}


def post_events(client: httpx.Client, events: list[dict[str, Any]], **extra: Any) -> httpx.Response:
    return client.post(EVENTS_PATH, json={"access_token": TOKEN, "data": events, **extra})


def graph_error(response: httpx.Response, status: int, code: int, subcode: int | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert error.get("error_subcode") == subcode
    assert len(error["fbtrace_id"]) == 11
    assert TOKEN not in response.text
    return error


# -- accepted and rejected batches ---------------------------------------------


def test_accepted_batch_is_recorded(sandbox: SandboxServer, client: httpx.Client) -> None:
    events = [make_event(event_id="a"), make_event(event_id="b", event_name="Purchase",
                                                    custom_data={"value": 12.5, "currency": "eur"})]
    response = post_events(client, events, test_event_code="TEST123", partner_agent="capi-uploader")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["events_received"] == 2 and body["messages"] == []
    assert len(body["fbtrace_id"]) == 11
    assert sandbox.accepted() == events
    assert sandbox.accepted(DATASET) == events
    assert sandbox.requests() == [{"method": "POST", "path": EVENTS_PATH, "status": 200,
                                   "n_events": 2, "test_event_code": "TEST123"}]


def test_one_bad_event_rejects_the_whole_batch(sandbox: SandboxServer, client: httpx.Client) -> None:
    events = [make_event(), make_event(user_data={"em": "john@example.com"}), make_event()]
    error = graph_error(post_events(client, events), 400, 100, 2804011)
    assert error["message"] == "Invalid parameter"
    assert error["type"] == "OAuthException"
    assert error["is_transient"] is False
    assert error["error_user_msg"].startswith("Event 1: ")
    assert "SHA-256" in error["error_user_msg"]
    assert sandbox.accepted() == []
    assert sandbox.requests()[0]["status"] == 400


@pytest.mark.parametrize(
    ("overrides", "subcode"),
    [
        pytest.param({"user_data": {"em": "John@Example.com"}}, 2804011, id="unhashed-email"),
        pytest.param({"user_data": {"em": "A" * 64}}, 2804011, id="uppercase-hash"),
        pytest.param({"user_data": {"ph": [HASH, "16505551212"]}}, 2804011, id="unhashed-in-list"),
        pytest.param({"event_time": NOW - 7 * DAY - 1}, 2804003, id="too-old"),
        pytest.param({"event_time": NOW - 63 * DAY, "action_source": "physical_store"}, 2804003,
                     id="physical-store-too-old"),
        pytest.param({"event_time": NOW + 61}, 2804004, id="future"),
        pytest.param({"event_time": float(NOW)}, 2804006, id="float-time"),
        pytest.param({"event_time": str(NOW)}, 2804006, id="string-time"),
        pytest.param({"event_time": True}, 2804006, id="bool-time"),
        pytest.param({"action_source": "crm"}, 2804006, id="bad-action-source"),
        pytest.param({"event_name": ""}, 2804006, id="empty-event-name"),
        pytest.param({"user_data": [HASH]}, 2804006, id="user-data-not-object"),
        pytest.param({"event_id": 17}, 2804006, id="event-id-not-string"),
        pytest.param({"opt_out": "yes"}, 2804006, id="opt-out-not-bool"),
        pytest.param({"data_processing_options": [1]}, 2804006, id="dpo-not-strings"),
        pytest.param({"event_name": None}, 2804002, id="missing-event-name"),
        pytest.param({"action_source": None}, 2804002, id="missing-action-source"),
        pytest.param({"user_data": None}, 2804002, id="missing-user-data"),
        pytest.param({"evnt_id": "x"}, 2804005, id="unknown-event-key"),
        pytest.param({"user_data": {"em": HASH, "emial": HASH}}, 2804005, id="unknown-user-key"),
        pytest.param({"event_name": "Purchase", "custom_data": {"value": 10}}, 2804008,
                     id="purchase-without-currency"),
        pytest.param({"event_name": "Purchase", "custom_data": {"currency": "USD"}}, 2804008,
                     id="purchase-without-value"),
        pytest.param({"custom_data": {"value": 1, "currency": "XYZ"}}, 2804009, id="bad-currency"),
        pytest.param({"custom_data": {"value": 1, "currency": "US"}}, 2804009, id="short-currency"),
        pytest.param({"custom_data": {"value": -1, "currency": "USD"}}, 2804010, id="negative-value"),
        pytest.param({"custom_data": {"value": "10", "currency": "USD"}}, 2804010, id="string-value"),
        pytest.param({"action_source": "website"}, 2804007, id="website-without-url-and-ua"),
        pytest.param({"action_source": "website", "event_source_url": "https://shop.example"},
                     2804007, id="website-without-user-agent"),
        pytest.param({"user_data": {"em": HASH, "lead_id": "12345"}}, 2804019, id="short-lead-id"),
        pytest.param({"user_data": {"lead_id": "12345678901234x"}}, 2804019, id="non-digit-lead-id"),
        pytest.param({"user_data": {"lead_id": 12345}}, 2804019, id="small-int-lead-id"),
        pytest.param({"user_data": {"em": HASH, "client_ip_address": 1}}, 2804006, id="ip-not-string"),
    ],
)
def test_each_rule_rejects(client: httpx.Client, overrides: dict[str, Any], subcode: int) -> None:
    error = graph_error(post_events(client, [make_event(), make_event(**overrides)]), 400, 100, subcode)
    assert error["error_user_msg"].startswith("Event 1: ")


@pytest.mark.parametrize(
    "user_data",
    [
        pytest.param({}, id="empty"),
        pytest.param({"ct": HASH, "st": HASH, "zp": HASH, "country": HASH, "ge": HASH,
                      "client_user_agent": "Mozilla/5.0"}, id="location-only"),
        pytest.param({"country": HASH}, id="country-only"),
        pytest.param({"db": HASH, "client_user_agent": "Mozilla/5.0"}, id="db-and-ua"),
        pytest.param({"fn": HASH, "ge": HASH}, id="fn-and-ge"),
        pytest.param({"ln": HASH, "ge": HASH}, id="ln-and-ge"),
        pytest.param({"ln": HASH}, id="ln-only"),
    ],
)
def test_too_little_customer_information(client: httpx.Client, user_data: dict[str, Any]) -> None:
    graph_error(post_events(client, [make_event(user_data=user_data)]), 400, 100, 2804050)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"event_time": NOW - 30 * DAY, "action_source": "physical_store"},
                     id="physical-store-30-days"),
        pytest.param({"event_time": NOW - 7 * DAY}, id="exactly-7-days"),
        pytest.param({"event_time": NOW + 60}, id="clock-skew"),
        pytest.param({"user_data": {"fn": HASH, "ln": HASH, "country": HASH}}, id="names-country"),
        pytest.param({"user_data": {"external_id": "crm-42"}}, id="raw-external-id"),
        pytest.param({"user_data": {"lead_id": LEAD_ID}}, id="lead-id-string"),
        pytest.param({"user_data": {"lead_id": int(LEAD_ID)}}, id="lead-id-int"),
        pytest.param({"user_data": {"ge": HASH, "client_ip_address": "203.0.113.9"}}, id="ip-and-ge"),
        pytest.param({"custom_data": {"value": 0, "currency": "usd"}}, id="zero-lowercase-currency"),
        pytest.param({"action_source": "website", "event_source_url": "https://shop.example",
                      "user_data": {"em": HASH, "client_user_agent": "Mozilla/5.0"}}, id="website"),
        pytest.param({"data_processing_options": ["LDU"], "data_processing_options_country": 1,
                      "data_processing_options_state": 1000, "opt_out": False}, id="ldu"),
    ],
)
def test_valid_events_are_accepted(sandbox: SandboxServer, client: httpx.Client,
                                   overrides: dict[str, Any]) -> None:
    event = make_event(**overrides)
    assert post_events(client, [event]).status_code == 200
    assert sandbox.accepted() == [event]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"access_token": TOKEN}, id="missing-data"),
        pytest.param({"access_token": TOKEN, "data": []}, id="empty-data"),
        pytest.param({"access_token": TOKEN, "data": {"event_name": "Lead"}}, id="data-not-list"),
        pytest.param({"access_token": TOKEN, "data": [make_event()] * 1001}, id="over-1000"),
        pytest.param({"access_token": TOKEN, "data": [make_event()], "test_event_code": 5},
                     id="test-event-code-not-string"),
    ],
)
def test_bad_request_shape(sandbox: SandboxServer, client: httpx.Client, body: dict) -> None:
    graph_error(client.post(EVENTS_PATH, json=body), 400, 100, 2804001)
    assert sandbox.accepted() == []


def test_exactly_1000_events_are_accepted(sandbox: SandboxServer, client: httpx.Client) -> None:
    assert post_events(client, [make_event()] * 1000).json()["events_received"] == 1000
    assert sandbox.requests()[0]["n_events"] == 1000


def test_malformed_json_body(client: httpx.Client) -> None:
    response = client.post(EVENTS_PATH, content=b"{not json",
                           headers={"Content-Type": "application/json"})
    graph_error(response, 400, 100, 2804001)


# -- token, dataset, path ------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"access_token": "wrong"}, id="wrong"),
        pytest.param({"access_token": ""}, id="empty"),
        pytest.param({}, id="missing"),
    ],
)
def test_bad_token(sandbox: SandboxServer, client: httpx.Client, body: dict) -> None:
    error = graph_error(client.post(EVENTS_PATH, json={**body, "data": [make_event()]}), 400, 190)
    assert error["message"] == "Invalid OAuth access token - Cannot parse access token"
    assert sandbox.accepted() == []


def test_token_in_query_string_is_refused(sandbox: SandboxServer, client: httpx.Client) -> None:
    response = client.post(EVENTS_PATH, params={"access_token": TOKEN}, json={"data": [make_event()]})
    error = graph_error(response, 400, 100)
    assert error["message"] == "access_token must not be sent in the URL"
    assert sandbox.accepted() == []
    assert sandbox.requests()[0]["path"] == EVENTS_PATH  # the query, with its token, is not kept


def test_any_token_accepted_when_none_configured() -> None:
    with SandboxServer(now=lambda: NOW) as server, httpx.Client(base_url=server.url) as http:
        ok = http.post("/v25.0/42/events", json={"access_token": "anything", "data": [make_event()]})
        missing = http.post("/v25.0/42/events", json={"data": [make_event()]})
        assert ok.status_code == 200
        graph_error(missing, 400, 190)
        assert server.accepted("42") == [make_event()]
        assert server.accepted("other") == []


def test_wrong_dataset(sandbox: SandboxServer, client: httpx.Client) -> None:
    response = client.post("/v25.0/999/events", json={"access_token": TOKEN, "data": [make_event()]})
    error = graph_error(response, 400, 100, 33)
    assert error["type"] == "GraphMethodException"
    assert "Object with ID '999' does not exist" in error["message"]
    assert sandbox.accepted() == []


@pytest.mark.parametrize("version", ["25.0", "v25", "latest"])
def test_bad_version(client: httpx.Client, version: str) -> None:
    response = client.post(f"/{version}/{DATASET}/events",
                           json={"access_token": TOKEN, "data": [make_event()]})
    assert "Unknown path components" in graph_error(response, 400, 2500)["message"]


def test_unknown_route_and_method_answer_json(client: httpx.Client) -> None:
    graph_error(client.post(f"/v25.0/{DATASET}/customaudiences", json={}), 400, 100)
    response = client.delete(EVENTS_PATH)
    assert response.status_code == 501
    assert response.headers["content-type"] == "application/json"


def test_form_encoded_body(sandbox: SandboxServer, client: httpx.Client) -> None:
    events = [make_event()]
    response = client.post(EVENTS_PATH, data={"access_token": TOKEN, "data": json.dumps(events),
                                              "test_event_code": "TEST9"})
    assert response.status_code == 200
    assert sandbox.accepted() == events
    assert sandbox.requests()[0]["test_event_code"] == "TEST9"


def test_bearer_header(sandbox: SandboxServer, client: httpx.Client) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert client.post(EVENTS_PATH, json={"data": [make_event()]}, headers=headers).status_code == 200
    wrong = client.post(EVENTS_PATH, json={"data": [make_event()]},
                        headers={"Authorization": "Bearer nope"})
    graph_error(wrong, 400, 190)
    assert len(sandbox.accepted()) == 1


def test_preflight(client: httpx.Client) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = client.get(f"/v25.0/{DATASET}", headers=headers)
    assert response.status_code == 200
    assert response.json() == {"id": DATASET, "name": "Sandbox dataset"}
    graph_error(client.get(f"/v25.0/{DATASET}"), 400, 190)
    graph_error(client.get(f"/v25.0/{DATASET}", headers={"Authorization": "Bearer x"}), 400, 190)
    graph_error(client.get("/v25.0/999", headers=headers), 400, 100, 33)
    graph_error(client.get(f"/v25.0/{DATASET}", params={"access_token": TOKEN}), 400, 100)


# -- fault modes ---------------------------------------------------------------


def test_fail_next_n_with_500(sandbox: SandboxServer, client: httpx.Client) -> None:
    sandbox.set_faults(fail_next_n_with_500=2)
    for _ in range(2):
        assert graph_error(post_events(client, [make_event()]), 500, 1)["is_transient"] is True
    assert post_events(client, [make_event()]).status_code == 200
    assert [r["status"] for r in sandbox.requests()] == [500, 500, 200]
    assert len(sandbox.accepted()) == 1


def test_throttle_next_n(sandbox: SandboxServer, client: httpx.Client) -> None:
    sandbox.set_faults(throttle_next_n=1)
    error = graph_error(post_events(client, [make_event()]), 400, 17, 2446079)
    assert error["message"] == "User request limit reached"
    assert error["is_transient"] is True
    assert post_events(client, [make_event()]).status_code == 200
    assert len(sandbox.accepted()) == 1


def test_drop_next_n(sandbox: SandboxServer, client: httpx.Client) -> None:
    sandbox.set_faults(drop_next_n=1)
    with pytest.raises(httpx.TransportError):
        post_events(client, [make_event()])
    assert post_events(client, [make_event()]).status_code == 200
    assert [r["status"] for r in sandbox.requests()] == [None, 200]
    assert len(sandbox.accepted()) == 1


def test_delay_seconds() -> None:
    # Its own server: the timed-out request is still answered later, after the test.
    with SandboxServer(now=lambda: NOW) as server, httpx.Client(base_url=server.url) as http:
        server.set_faults(delay_seconds=0.3)
        with pytest.raises(httpx.ReadTimeout):
            http.post("/v25.0/1/events", json={"access_token": "t", "data": [make_event()]},
                      timeout=0.05)
        server.set_faults(delay_seconds=0.01)
        assert http.post("/v25.0/1/events",
                         json={"access_token": "t", "data": [make_event()]}).status_code == 200


def test_reject_lead_ids(sandbox: SandboxServer, client: httpx.Client) -> None:
    sandbox.set_faults(reject_lead_ids={LEAD_ID})
    events = [make_event(user_data={"lead_id": "111111111111111"}),
              make_event(user_data={"lead_id": int(LEAD_ID)})]
    error = graph_error(post_events(client, events), 400, 100, 2804019)
    assert error["error_user_msg"].startswith("Event 1: ")
    assert sandbox.accepted() == []


def test_faults_do_not_touch_preflight(sandbox: SandboxServer, client: httpx.Client) -> None:
    sandbox.set_faults(fail_next_n_with_500=1)
    assert client.get(f"/v25.0/{DATASET}", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert sandbox.faults.fail_next_n_with_500 == 1


def test_set_faults_refuses_bad_settings(sandbox: SandboxServer) -> None:
    with pytest.raises(ValueError):
        sandbox.set_faults(explode=True)
    with pytest.raises(ValueError):
        sandbox.set_faults(throttle_next_n=-1)
    with pytest.raises(ValueError):
        sandbox.set_faults(reject_lead_ids="123")


# -- inspection endpoints ------------------------------------------------------


def test_inspection_endpoints(sandbox: SandboxServer, client: httpx.Client) -> None:
    event = make_event()
    post_events(client, [event])
    assert client.get("/_sandbox/events").json() == {"events": [event]}
    assert client.get("/_sandbox/events", params={"dataset_id": "other"}).json() == {"events": []}
    requests = client.get("/_sandbox/requests").json()["requests"]
    assert requests == [{"method": "POST", "path": EVENTS_PATH, "status": 200,
                         "n_events": 1, "test_event_code": None}]
    assert client.post("/_sandbox/reset").status_code == 200
    assert client.get("/_sandbox/events").json() == {"events": []}
    assert sandbox.requests() == []


def test_faults_over_http(sandbox: SandboxServer, client: httpx.Client) -> None:
    response = client.post("/_sandbox/faults",
                           json={"throttle_next_n": 1, "reject_lead_ids": [int(LEAD_ID)]})
    assert response.status_code == 200
    assert response.json()["faults"]["reject_lead_ids"] == [LEAD_ID]
    assert client.get("/_sandbox/faults").json()["faults"]["throttle_next_n"] == 1
    graph_error(post_events(client, [make_event()]), 400, 17, 2446079)
    graph_error(client.post("/_sandbox/faults", json={"nope": 1}), 400, 100)
    client.post("/_sandbox/reset")
    assert sandbox.faults.reject_lead_ids == frozenset()


def test_accepted_returns_copies(sandbox: SandboxServer, client: httpx.Client) -> None:
    post_events(client, [make_event()])
    sandbox.accepted()[0]["event_name"] = "changed"
    assert sandbox.accepted()[0]["event_name"] == "Lead"


def test_accepted_events_keep_arrival_order_across_bodies_and_datasets() -> None:
    # The sandbox keeps each accepted body as it came and parses it again when asked.
    with SandboxServer(now=lambda: NOW) as server, httpx.Client(base_url=server.url) as http:
        first, second, third = ([make_event(event_id=f"{n}-{i}") for i in range(n)] for n in (2, 3, 1))
        assert http.post("/v25.0/1/events", json={"access_token": "t", "data": first}).status_code == 200
        form = {"access_token": "t", "data": json.dumps(second)}
        assert http.post("/v25.0/2/events", data=form).status_code == 200
        assert http.post("/v25.0/1/events", json={"access_token": "t", "data": third}).status_code == 200
        bad = http.post("/v25.0/1/events", json={"access_token": "t", "data": [make_event(event_name="")]})
        assert bad.status_code == 400
        assert server.accepted() == first + second + third
        assert server.accepted("1") == first + third
        assert http.get("/_sandbox/events", params={"dataset_id": "2"}).json() == {"events": second}
