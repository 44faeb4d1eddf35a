"""The notification actions against real receivers on loopback: an HTTP server that
checks the HMAC signature, an SMTP server (aiosmtpd), syslog listeners (UDP, TCP)."""

from __future__ import annotations

import queue
import socket
import socketserver
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from aiosmtpd.controller import Controller
from tests.integration.receivers import signed_webhook_receiver

from custodes.core.cases import Case, Severity
from custodes.respond.actions import (
    ActionFailedError,
    EmailAction,
    SyslogAction,
    WebhookAction,
)
from custodes.respond.plan import PlannedAction

KEY = b"k" * 32
T = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CASE = Case("c-1", "compromised_credentials_chain", "alice", Severity.CRITICAL, 97, T, T,
            ("a1", "a2"), 2, tactics=("TA0001 Initial Access",),
            story=("2 alert(s) by user alice", "unusual sign-in at 10:00 then export at 10:20"))
STEP = PlannedAction("r-1", "c-1", "compromised_credentials", "webhook", "alice", "auto")
WAIT = 5  # seconds: the bound on every wait for a receiver


@pytest.fixture
def webhook_receiver() -> Iterator[tuple[str, queue.Queue]]:
    with signed_webhook_receiver(KEY) as receiver:
        yield receiver


def test_the_webhook_is_signed_and_the_receiver_checks_it(webhook_receiver) -> None:
    url, received = webhook_receiver
    detail = WebhookAction(url, KEY).perform(STEP, CASE, T)
    good, body = received.get(timeout=WAIT)
    assert good and detail == "webhook delivered (204)"
    assert body["case"]["case_id"] == "c-1" and body["case"]["tactics"] == ["TA0001 Initial Access"]


def test_a_webhook_with_the_wrong_key_is_refused(webhook_receiver) -> None:
    url, received = webhook_receiver
    with pytest.raises(ActionFailedError, match="answered 401"):
        WebhookAction(url, b"wrong").perform(STEP, CASE, T)
    assert received.get(timeout=WAIT)[0] is False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_webhook_fails_in_one_line() -> None:
    port = _free_port()  # nobody listens on it
    with pytest.raises(ActionFailedError, match="webhook: ConnectError"):
        WebhookAction(f"http://127.0.0.1:{port}/", KEY, timeout=WAIT).perform(STEP, CASE, T)


class _Inbox:
    def __init__(self) -> None:
        self.messages: queue.Queue = queue.Queue()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's API
        self.messages.put(envelope)
        return "250 OK"


def test_the_email_reaches_a_real_smtp_server() -> None:
    inbox = _Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ready_timeout=WAIT)
    controller.start()
    try:
        action = EmailAction("127.0.0.1", port, "custodes@hospital.test",
                             ("privacy@hospital.test",), timeout=WAIT)
        assert action.perform(STEP, CASE, T) == "email sent to 1 recipient(s)"
        envelope = inbox.messages.get(timeout=WAIT)
    finally:
        controller.stop()
    text = envelope.content.decode()
    assert envelope.rcpt_tos == ["privacy@hospital.test"]
    assert "critical case c-1" in text and "unusual sign-in at 10:00" in text


def test_syslog_cef_over_udp() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(WAIT)
        SyslogAction("127.0.0.1", listener.getsockname()[1], "udp").perform(STEP, CASE, T)
        line = listener.recv(65535).decode()
    assert line.startswith("<106>1 2026-03-02T10:00:00.000000Z custodes custodes")
    assert "CEF:0|Custodes|Custodes|0|compromised_credentials_chain|" in line
    assert "|10|suser=alice cs1Label=caseId cs1=c-1" in line


def test_syslog_cef_over_tcp() -> None:
    lines: queue.Queue = queue.Queue()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            lines.put(self.rfile.readline().decode())

    with socketserver.TCPServer(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(target=server.handle_request, daemon=True)
        thread.start()
        SyslogAction("127.0.0.1", server.server_address[1], "tcp").perform(STEP, CASE, T)
        line = lines.get(timeout=WAIT)
        thread.join(WAIT)
    assert line.endswith("\n") and "CEF:0|Custodes|" in line
