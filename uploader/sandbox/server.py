"""Sandbox Graph API: a real HTTP server that answers like Meta's Conversions API.

Routes (every answer is JSON):

- ``POST /{version}/{dataset_id}/events``  validate and record a batch (rules in ``rules.py``)
- ``GET  /{version}/{dataset_id}``         preflight: token and dataset check
- ``GET  /_sandbox/events``                accepted events (``?dataset_id=`` to filter)
- ``GET  /_sandbox/requests``              log of Graph requests (not of ``/_sandbox`` ones)
- ``GET|POST /_sandbox/faults``            read or change the fault settings
- ``POST /_sandbox/reset``                 forget events, requests and faults

Fault modes apply to ``POST .../events`` only, since that is the call the uploader
retries; each request consumes at most one counted fault, checked in the order
drop, HTTP 500, throttle. ``delay_seconds`` applies to every events request.

The access token is never echoed, logged or recorded; only the URL path (never
the query string, where a careless client may have put the token) is kept. (An
accepted body stays in memory as it came, token included; only its events are served.)
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import json
import logging
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from uploader.sandbox import rules
from uploader.sandbox.rules import GraphError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024 * 1024
Reply = tuple[int, dict[str, Any]]
# Counted faults that answer with an error (drop_next_n answers nothing at all).
_FAULT_ERRORS: dict[str, Callable[[], GraphError]] = {
    "fail_next_n_with_500": rules.server_failure,
    "throttle_next_n": rules.throttled,
}


@dataclass(frozen=True)
class Faults:
    """Misbehaviour the sandbox puts on, to exercise the uploader's retry paths."""

    fail_next_n_with_500: int = 0
    throttle_next_n: int = 0
    delay_seconds: float = 0.0
    drop_next_n: int = 0
    reject_lead_ids: frozenset[str] = frozenset()

    def updated(self, **settings: Any) -> Faults:
        """Return a copy with ``settings`` applied; raise ValueError for a bad name or value."""
        known = {field.name for field in dataclasses.fields(self)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"unknown fault setting {unknown[0]!r}")
        return dataclasses.replace(self, **{k: _fault_value(k, v) for k, v in settings.items()})

    def as_json(self) -> dict[str, Any]:
        """The settings as JSON-ready values."""
        settings = dataclasses.asdict(self)
        settings["reject_lead_ids"] = sorted(self.reject_lead_ids)
        return settings


def _fault_value(name: str, value: Any) -> Any:
    if name == "reject_lead_ids":
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise ValueError("reject_lead_ids must be a collection of lead ids")
        return frozenset(str(lead_id) for lead_id in value)
    number_types = (int, float) if name == "delay_seconds" else (int,)
    if isinstance(value, bool) or not isinstance(value, number_types) or value < 0:
        raise ValueError(f"{name} must be a number >= 0")
    return float(value) if name == "delay_seconds" else value


@dataclass(frozen=True)
class _Request:
    """What the handler read off the wire, parsed just enough to answer."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: dict[str, Any]
    body_error: GraphError | None
    bearer_token: str | None
    content_type: str = ""
    raw_body: bytes = b""


class SandboxServer:
    """A Graph API look-alike on a loopback port, with inspectable state and fault modes.

    ``token`` / ``dataset_id``: when set, only that token / dataset id is accepted.
    ``now``: clock for the event_time rules, replaceable in tests.
    ``on_accept``: called with the number of events after a batch is recorded as accepted
    and before the answer goes out; crash tests use it to kill a client in exactly the
    gap between Meta's acceptance and the client's ledger commit.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        dataset_id: str | None = None,
        now: Callable[[], float] = time.time,
        on_accept: Callable[[int], None] | None = None,
    ) -> None:
        self._address = (host, port)
        self._on_accept = on_accept
        self._token = token
        self._dataset_id = dataset_id
        self._now = now
        self._lock = threading.Lock()
        # (dataset id, content type, body) of each accepted request, parsed again by accepted().
        # A body still holds its access_token: kept in this process's memory, never served.
        self._accepted: list[tuple[str, str, bytes]] = []
        self._requests: list[dict[str, Any]] = []
        self._faults = Faults()
        self._httpd: _GraphHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> SandboxServer:
        """Bind the port and serve in a daemon thread; return self."""
        if self._httpd is not None:
            raise RuntimeError("sandbox already started")
        self._httpd = _GraphHTTPServer(self._address, _Handler, self)
        # A short poll interval keeps stop() quick: shutdown waits for the next poll.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name="sandbox-graph-api", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port; safe to call twice."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        if self._httpd is None:
            raise RuntimeError("sandbox not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- inspection and control --------------------------------------------

    def accepted(self, dataset_id: str | None = None) -> list[dict[str, Any]]:
        """Accepted events exactly as received, in arrival order; optionally one dataset's.

        The bodies are kept as they came and parsed again here, into new objects on each call:
        holding every event as dicts would cost memory and garbage-collector time on each batch.
        """
        with self._lock:
            bodies = [(ctype, raw) for d, ctype, raw in self._accepted if dataset_id in (None, d)]
        return [event for ctype, raw in bodies for event in parse_body(ctype, raw)["data"]]

    def requests(self) -> list[dict[str, Any]]:
        """One dict per Graph request: method, path, status (None if dropped), n_events, test_event_code."""
        with self._lock:
            return copy.deepcopy(self._requests)

    def reset(self) -> None:
        """Forget accepted events and requests, and clear every fault."""
        with self._lock:
            self._accepted.clear()
            self._requests.clear()
            self._faults = Faults()

    def set_faults(self, **settings: Any) -> Faults:
        """Change the named fault settings (see :class:`Faults`); the others stay as they are."""
        with self._lock:
            self._faults = self._faults.updated(**settings)
            return self._faults

    @property
    def faults(self) -> Faults:
        """The current fault settings."""
        with self._lock:
            return self._faults

    # -- answering (called from handler threads) ---------------------------

    def _answer(self, request: _Request) -> Reply | None:
        """Answer one request; None means: close the connection without answering."""
        segments = [part for part in request.path.split("/") if part]
        if segments[:1] == ["_sandbox"]:
            return self._answer_inspection(request, segments[1:])
        reply = self._answer_graph(request, segments)
        self._record(request, None if reply is None else reply[0])
        return reply

    def _answer_graph(self, request: _Request, segments: list[str]) -> Reply | None:
        error = self._route_error(request, segments)
        if error is not None:
            return _error_reply(error)
        if request.method == "GET":
            return self._answer_preflight(request, segments[1])
        fault = self._take_fault()
        if fault == "drop_next_n":
            return None
        if fault is not None:
            return _error_reply(_FAULT_ERRORS[fault]())
        return self._answer_events(request, segments[1])

    @staticmethod
    def _route_error(request: _Request, segments: list[str]) -> GraphError | None:
        if "access_token" in request.query:
            return rules.token_in_url()
        version_error = rules.check_version(segments[0]) if segments else None
        if version_error is not None:
            return version_error
        is_preflight = request.method == "GET" and len(segments) == 2
        is_events = request.method == "POST" and len(segments) == 3 and segments[2] == "events"
        if not (is_preflight or is_events):
            return rules.unsupported_request(request.method, request.path)
        return None

    def _auth_error(self, request: _Request, dataset_id: str) -> GraphError | None:
        tokens = _supplied_tokens(request)
        return rules.check_token(tokens, self._token) or rules.check_dataset(
            dataset_id, self._dataset_id, request.method
        )

    def _answer_preflight(self, request: _Request, dataset_id: str) -> Reply:
        error = self._auth_error(request, dataset_id)
        if error is not None:
            return _error_reply(error)
        return 200, {"id": dataset_id, "name": "Sandbox dataset"}

    def _answer_events(self, request: _Request, dataset_id: str) -> Reply:
        error = request.body_error or self._auth_error(request, dataset_id)
        if error is not None:
            return _error_reply(error)
        outcome = rules.validate_events_body(request.body, self._now(), self.faults.reject_lead_ids)
        if isinstance(outcome, GraphError):
            return _error_reply(outcome)
        with self._lock:
            self._accepted.append((dataset_id, request.content_type, request.raw_body))
        if self._on_accept is not None:
            self._on_accept(len(outcome))
        return 200, {"events_received": len(outcome), "messages": [], "fbtrace_id": _fbtrace_id()}

    def _take_fault(self) -> str | None:
        """Sleep if asked, then consume one counted fault and return its name, if any."""
        delay = self.faults.delay_seconds
        if delay:
            time.sleep(delay)
        with self._lock:
            for name in ("drop_next_n", "fail_next_n_with_500", "throttle_next_n"):
                left = getattr(self._faults, name)
                if left > 0:
                    self._faults = self._faults.updated(**{name: left - 1})
                    return name
        return None

    def _record(self, request: _Request, status: int | None) -> None:
        data = request.body.get("data")
        code = request.body.get("test_event_code")
        entry = {
            "method": request.method,
            "path": request.path,
            "status": status,
            "n_events": len(data) if isinstance(data, list) else 0,
            "test_event_code": code if isinstance(code, str) else None,
        }
        log.debug("sandbox %s %s -> %s", request.method, request.path, status)
        with self._lock:
            self._requests.append(entry)

    def _answer_inspection(self, request: _Request, segments: list[str]) -> Reply:
        route = (request.method, "/".join(segments))
        if route == ("GET", "events"):
            wanted = request.query.get("dataset_id", [None])[-1]
            return 200, {"events": self.accepted(wanted)}
        if route == ("GET", "requests"):
            return 200, {"requests": self.requests()}
        if route == ("POST", "reset"):
            self.reset()
            return 200, {"success": True}
        if route == ("GET", "faults"):
            return 200, {"faults": self.faults.as_json()}
        if route == ("POST", "faults"):
            return self._answer_set_faults(request)
        return _error_reply(rules.unsupported_request(request.method, request.path))

    def _answer_set_faults(self, request: _Request) -> Reply:
        if request.body_error is not None:
            return _error_reply(request.body_error)
        try:
            faults = self.set_faults(**request.body)
        except ValueError as problem:
            return _error_reply(GraphError(400, 100, f"Invalid fault settings: {problem}"))
        return 200, {"faults": faults.as_json()}


def _supplied_tokens(request: _Request) -> list[str]:
    """Every token the request carries, from the body and the Authorization header."""
    tokens = []
    if "access_token" in request.body:
        body_token = request.body["access_token"]
        tokens.append(body_token if isinstance(body_token, str) else "")
    if request.bearer_token is not None:
        tokens.append(request.bearer_token)
    return tokens


def _fbtrace_id() -> str:
    return secrets.token_urlsafe(8)  # 11 characters, like Graph's trace ids


def _error_reply(error: GraphError) -> Reply:
    return error.status, error.body(_fbtrace_id())


def parse_body(content_type: str, raw: bytes) -> dict[str, Any]:
    """Parse a JSON or form-encoded body into a dict; raise GraphError when malformed.

    In a form body, ``data`` is itself a JSON string, as in Meta's samples.
    """
    if not raw or raw.isspace():  # (strip() would copy a large body)
        return {}
    try:
        text = raw.decode("utf-8")
        if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            return _parse_form(text)
        body = json.loads(text, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError):
        raise _bad_body("the body is not valid JSON or form data") from None
    if not isinstance(body, dict):
        raise _bad_body("the body must be a JSON object")
    return body


def _parse_form(text: str) -> dict[str, Any]:
    fields = {key: values[-1] for key, values in parse_qs(text, keep_blank_values=True).items()}
    if "data" in fields:
        fields["data"] = json.loads(fields["data"], parse_constant=_refuse_constant)
    return fields


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; Python's parser would let them through.
    raise ValueError(f"{name} is not valid JSON")


def _bad_body(detail: str) -> GraphError:
    return rules.invalid(rules.SUB_BAD_REQUEST, "Invalid request body", detail)


class _GraphHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows which SandboxServer answers its requests."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        super().__init__(address, handler)

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        # A client that hangs up mid-request (a killed uploader, a dropped-connection fault)
        # is normal here: note it quietly instead of printing a traceback to stderr.
        log.debug("sandbox: request from %s ended abnormally", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """Reads one request off the wire, asks the sandbox for the answer, writes it."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, each answer would wait ~40 ms.
    disable_nagle_algorithm = True
    server: _GraphHTTPServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def _handle(self) -> None:
        raw = self._read_body()
        if raw is None:
            return
        reply = self.server.sandbox._answer(self._parse_request(raw))
        if reply is None:
            self.close_connection = True  # a dropped request: hang up, say nothing
            return
        self._send_json(*reply)

    def _parse_request(self, raw: bytes) -> _Request:
        url = urlsplit(self.path)
        content_type = self.headers.get("Content-Type", "")
        try:
            body, body_error = parse_body(content_type, raw), None
        except GraphError as error:
            body, body_error = {}, error
        return _Request(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            body=body,
            body_error=body_error,
            bearer_token=self._bearer_token(),
            content_type=content_type,
            raw_body=raw,
        )

    def _bearer_token(self) -> str | None:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.send_error(413 if length > 0 else 400, "Bad Content-Length")
            return None
        return self.rfile.read(length)

    def _send_json(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:  # say so, or a keep-alive client would reuse a closed socket
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer protocol-level errors (bad request line, unknown method) in JSON too."""
        self.close_connection = True
        error = GraphError(code, 100, message or "Bad request")
        self._send_json(code, error.body(_fbtrace_id()))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        # The request line may carry a token in its query string: never log it.
        pass


def serve_forever(host: str, port: int, token: str | None, dataset_id: str | None,
                  faults: dict[str, Any] | None = None) -> None:
    """Run a sandbox in the foreground until Ctrl-C or SIGTERM, with ``faults`` switched on."""
    # What this process holds by now (the command line's imports) lives until it exits: frozen,
    # the full collections that each big parsed batch sets off no longer walk through all of it.
    gc.freeze()
    stop = threading.Event()
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if in_main else None
    try:
        with SandboxServer(host, port, token=token, dataset_id=dataset_id) as sandbox:
            sandbox.set_faults(**(faults or {}))
            print(f"Sandbox Graph API listening on {sandbox.url}", flush=True)
            while not stop.wait(0.5):
                pass
    except KeyboardInterrupt:
        pass
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
