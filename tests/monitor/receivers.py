"""Real receivers on loopback for alert deliveries: an HTTP server that records the
JSON it is sent (and can fail the first requests), and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from tests.conftest import free_port


class Webhooks:
    def __init__(self, fail_first: int = 0, delay: float = 0.0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        self.fail_first = fail_first
        self.delay = delay  # a slow endpoint: seconds before each answer
        self._lock = threading.Lock()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.bodies) >= count:
                    return list(self.bodies)
            time.sleep(0.02)
        raise AssertionError(f"wanted {count} webhook(s), got {self.bodies}")


@contextmanager
def webhook_receiver(fail_first: int = 0,
                     delay: float = 0.0) -> Iterator[tuple[str, Webhooks]]:
    hooks = Webhooks(fail_first, delay)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with hooks._lock:
                hooks.attempts += 1
                failing = hooks.attempts <= hooks.fail_first
                if not failing:
                    hooks.bodies.append(json.loads(body))
            time.sleep(hooks.delay)
            self.send_response(500 if failing else 204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", hooks
    finally:
        server.shutdown()
        server.server_close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        self.messages.append(
            message_from_bytes(envelope.original_content or b"", policy=policy.default))
        return "250 OK"


@contextmanager
def smtp_server(**kwargs: Any) -> Iterator[tuple[int, Mailbox]]:
    """aiosmtpd on 127.0.0.1; ``kwargs`` go to its SMTP class (tls_context, auth...)."""
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port, box
    finally:
        controller.stop()


def accept_login(user: str, password: str) -> Any:
    def check(server: Any, session: Session, envelope: Envelope, mechanism: str,
              data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == user.encode() and \
            data.password == password.encode()
        return AuthResult(success=ok)

    return check
