"""A stand-in for Stripe's API on loopback, for the real `stripe` SDK to talk to.

It answers what cloud/billing.py asks, in the JSON shapes Stripe documents:

    POST /v1/customers                 -> customer                (cus_…)
    POST /v1/checkout/sessions         -> checkout.session        (cs_test_…, url)
    POST /v1/billing_portal/sessions   -> billing_portal.session  (bps_…, url)
    GET  /v1/invoices/{id}             -> invoice (as `invoices` holds it; else 404)

Every request is recorded as it arrived (method, path, form fields as the SDK encoded
them, headers), so a test asserts what the SDK really sent. A request without
`Authorization: Bearer <the key given>` gets Stripe's 401. A POST whose
Idempotency-Key was seen gets the first answer again, as Stripe does, so a retry of a
call whose answer was lost creates nothing twice.

Faults, for the next `times` calls (`fail`): "500", "429", "400" (Stripe's error JSON),
"drop" (the connection closes unanswered), "drop_after" (the call is carried out, then
the connection closes: the answer is lost), "stall" (no answer for `stall_seconds`).
`echo_key` makes error messages quote the presented key, as a hostile or broken server
might, to show the caller does not pass them on.
"""
from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

FAULTS = ("500", "429", "400", "drop", "drop_after", "stall")
_ERRORS = {
    "500": (500, {"type": "api_error", "message": "An unknown error occurred"}),
    "429": (429, {"type": "invalid_request_error", "code": "rate_limit",
                  "message": "Too many requests hit the API too quickly."}),
    "400": (400, {"type": "invalid_request_error", "code": "parameter_invalid",
                  "message": "Invalid request.", "param": "line_items[0][price]"}),
}


@dataclass
class Call:
    method: str
    path: str
    form: dict[str, str]  # the form-encoded body, `line_items[0][price]` and all
    headers: dict[str, str]  # lower-case names
    fault: str = ""  # the fault injected into this call, if any


@dataclass
class _State:
    calls: list[Call] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    answers: dict[str, tuple[int, dict]] = field(default_factory=dict)  # idempotency key
    customers: dict[str, dict] = field(default_factory=dict)
    invoices: dict[str, dict] = field(default_factory=dict)


class StripeServer:
    def __init__(self, api_key: str, *, stall_seconds: float = 2.0):
        self.api_key = api_key
        self.stall_seconds = stall_seconds
        self.echo_key = False
        self._lock = threading.Lock()
        self._state = _State()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    # --- what tests use --------------------------------------------------------------
    def fail(self, times: int, fault: str) -> None:
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}")
        with self._lock:
            self._state.faults.extend([fault] * times)

    def calls(self, path: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._state.calls if path is None or c.path == path]

    @property
    def customers(self) -> dict[str, dict]:
        with self._lock:
            return dict(self._state.customers)

    def set_invoice(self, invoice_id: str, customer: str, status: str) -> None:
        with self._lock:
            self._state.invoices[invoice_id] = {
                "id": invoice_id, "object": "invoice", "customer": customer, "status": status,
                "livemode": False, "created": int(time.time())}

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # --- the API ---------------------------------------------------------------------
    def answer(self, method: str, path: str, form: dict, headers: dict) -> tuple[int, dict]:
        """Status and JSON for one call that got past authentication and faults."""
        key = headers.get("idempotency-key", "")
        with self._lock:
            if method == "POST" and key in self._state.answers:
                return self._state.answers[key]
            status, body = self._route(method, path, form)
            if method == "POST" and key:
                self._state.answers[key] = (status, body)
            return status, body

    def _route(self, method: str, path: str, form: dict) -> tuple[int, dict]:
        if (method, path) == ("POST", "/v1/customers"):
            customer = {"id": "cus_" + _token(), "object": "customer",
                        "email": form.get("email"), "name": form.get("name"),
                        "metadata": _nested(form, "metadata"), **_common()}
            self._state.customers[customer["id"]] = customer
            return 200, customer
        if (method, path) == ("POST", "/v1/checkout/sessions"):
            if form.get("customer") not in self._state.customers:
                return _missing("customer", form.get("customer"))
            session_id = "cs_test_" + _token()
            return 200, {"id": session_id, "object": "checkout.session", "mode": form.get("mode"),
                         "customer": form.get("customer"), "status": "open",
                         "client_reference_id": form.get("client_reference_id"),
                         "success_url": form.get("success_url"),
                         "cancel_url": form.get("cancel_url"),
                         "url": f"https://checkout.stripe.com/c/pay/{session_id}", **_common()}
        if (method, path) == ("POST", "/v1/billing_portal/sessions"):
            if form.get("customer") not in self._state.customers:
                return _missing("customer", form.get("customer"))
            return 200, {"id": "bps_" + _token(), "object": "billing_portal.session",
                         "customer": form.get("customer"), "return_url": form.get("return_url"),
                         "url": f"https://billing.stripe.com/p/session/test_{_token()}",
                         **_common()}
        if method == "GET" and path.startswith("/v1/invoices/"):
            invoice = self._state.invoices.get(path.rsplit("/", 1)[1])
            return (200, invoice) if invoice else _missing("invoice", path.rsplit("/", 1)[1])
        return 404, {"error": {"type": "invalid_request_error",
                               "message": f"Unrecognized request URL ({method}: {path})."}}

    def _record(self, call: Call) -> str:
        """Record the call; the fault it is to suffer ("" for none)."""
        with self._lock:
            call.fault = self._state.faults.pop(0) if self._state.faults else ""
            self._state.calls.append(call)
            return call.fault


def _handler(server: StripeServer):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            headers = {k.lower(): v for k, v in self.headers.items()}
            path = self.path.split("?", 1)[0]
            call = Call(method, path, dict(parse_qsl(raw, keep_blank_values=True)), headers)
            presented = headers.get("authorization", "")
            if presented != f"Bearer {server.api_key}":
                server._record(call)
                self._reply(401, {"error": {"type": "invalid_request_error", "message":
                                            "Invalid API Key provided: " + _masked(presented)}})
                return
            fault = server._record(call)
            if fault in ("drop", "stall"):
                if fault == "stall":
                    time.sleep(server.stall_seconds)
                self.close_connection = True  # and no answer at all
                return
            if fault in _ERRORS:
                status, error = _ERRORS[fault]
                if server.echo_key:
                    error = {**error, "message": f"{error['message']} (key {presented})"}
                self._reply(status, {"error": error})
                return
            status, body = server.answer(method, path, call.form, headers)
            if fault == "drop_after":
                self.close_connection = True
                return
            self._reply(status, body)

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", "req_" + _token())
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args) -> None:
            pass  # quiet: tests read `calls` instead

    return Handler


def _token() -> str:
    return secrets.token_hex(8)


def _common() -> dict:
    return {"livemode": False, "created": int(time.time())}


def _nested(form: dict, name: str) -> dict:
    """`metadata[account_id]=7` as Stripe reads it: {"account_id": "7"}."""
    prefix = f"{name}["
    return {k[len(prefix):-1]: v for k, v in form.items() if k.startswith(prefix)}


def _missing(kind: str, given) -> tuple[int, dict]:
    return 404, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                           "message": f"No such {kind}: '{given}'", "param": kind}}


def _masked(presented: str) -> str:
    """Stripe names a wrong key by its last four characters only."""
    key = presented.removeprefix("Bearer ")
    return f"{key[:8]}****{key[-4:]}" if len(key) > 12 else "****"
