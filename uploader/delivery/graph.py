"""The only module that speaks HTTP: one request in, one answer out.

The access token travels in the request body (a header for the preflight GET),
never in the URL, and is scrubbed from anything this module turns into a message.
Every answer comes back as a value: the layers above decide what to do with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from uploader.delivery.classify import NO_ANSWER, Action, classify
from uploader.errors import EndpointUnreachable
from uploader.settings import MetaSettings


@dataclass(frozen=True)
class Accepted:
    """Meta took the whole batch."""

    events_received: int
    fbtrace_id: str


@dataclass(frozen=True)
class GraphError:
    """Meta (or the network) did not confirm the batch."""

    status: int
    code: int | None
    subcode: int | None
    message: str
    fbtrace_id: str | None = None

    @property
    def action(self) -> Action:
        return classify(self.status, self.code, self.subcode)

    def describe(self) -> str:
        if self.status == NO_ANSWER:
            return self.message
        code = f"code {self.code}" + (f"/{self.subcode}" if self.subcode else "") if self.code else "no code"
        return f"HTTP {self.status}, {code}: {self.message}"


Answer = Accepted | GraphError


class GraphClient:
    """Posts batches of ready-made event JSON to ``/{version}/{dataset_id}/events``.

    One client is shared by the delivery threads: httpx.Client is thread-safe and
    keeps connections alive between batches.
    """

    def __init__(self, meta: MetaSettings, transport: httpx.BaseTransport | None = None) -> None:
        if meta.access_token is None or meta.dataset_id is None:
            raise ValueError("GraphClient needs an access token and a dataset id")
        self._meta = meta
        self._token = meta.access_token.reveal()
        timeout = httpx.Timeout(meta.read_timeout, connect=meta.connect_timeout)
        limits = httpx.Limits(max_connections=meta.concurrency, max_keepalive_connections=meta.concurrency)
        self._http = httpx.Client(transport=transport, timeout=timeout, limits=limits,
                                  headers={"User-Agent": "capi-uploader"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, payloads: list[str]) -> Answer:
        """Send one batch (each item one event's JSON)."""
        try:
            response = self._http.post(self._meta.events_url(), content=self._body(payloads),
                                       headers={"Content-Type": "application/json"})
        except httpx.HTTPError as exc:
            return GraphError(NO_ANSWER, None, None, f"no answer from {self._meta.graph_url} "
                                                     f"({type(exc).__name__}: {self._scrub(str(exc))})")
        return self._interpret(response, len(payloads))

    def preflight(self) -> Answer:
        """One cheap read of the dataset: proves the token and the dataset id before any work.

        Raises EndpointUnreachable when nothing answers at all.
        """
        url = f"{self._meta.graph_url}/{self._meta.api_version}/{self._meta.dataset_id}"
        try:
            response = self._http.get(url, params={"fields": "id,name"},
                                      headers={"Authorization": f"Bearer {self._token}"})
        except httpx.ConnectError as exc:
            raise EndpointUnreachable(f"cannot reach {self._meta.graph_url} ({self._scrub(str(exc))}); "
                                      "check META_GRAPH_URL and the network") from None
        except httpx.HTTPError as exc:
            return GraphError(NO_ANSWER, None, None, f"no answer from {self._meta.graph_url} "
                                                     f"({type(exc).__name__})")
        if response.status_code == 200:
            return Accepted(0, "")
        return self._interpret(response, 0)

    def _body(self, payloads: list[str]) -> bytes:
        # The events are JSON already: splice them in rather than parse and re-encode.
        extra = {"access_token": self._token}
        if self._meta.test_event_code:
            extra["test_event_code"] = self._meta.test_event_code
        return ('{"data":[' + ",".join(payloads) + "]," + json.dumps(extra)[1:]).encode("utf-8")

    def _interpret(self, response: httpx.Response, sent: int) -> Answer:
        body = _json(response)
        trace = body.get("fbtrace_id") if isinstance(body.get("fbtrace_id"), str) else None
        if response.status_code == 200 and body.get("events_received") == sent:
            return Accepted(sent, trace or "")
        if response.status_code == 200:
            return GraphError(200, None, None, f"Meta received {body.get('events_received')} of {sent} events",
                              trace)
        found = body.get("error")
        error: dict[str, Any] = found if isinstance(found, dict) else {}
        return GraphError(
            status=response.status_code,
            code=error.get("code") if isinstance(error.get("code"), int) else None,
            subcode=error.get("error_subcode") if isinstance(error.get("error_subcode"), int) else None,
            message=self._scrub(str(error.get("error_user_msg") or error.get("message") or response.reason_phrase)),
            fbtrace_id=error.get("fbtrace_id") or trace,
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def credentials_advice(failure: GraphError) -> str:
    """What the operator must do when Meta refuses the token or the dataset."""
    if failure.code in (190, 102):
        fix = "the access token is invalid or expired: create a new one and set META_ACCESS_TOKEN"
    elif failure.code == 100:
        fix = "the dataset does not exist or the token cannot use it: check META_DATASET_ID and the token's access"
    else:
        fix = "the token lacks permission for this dataset: grant it access in Events Manager"
    return f"Meta refused the request: {fix} ({failure.describe()}, fbtrace_id {failure.fbtrace_id})"
