"""The sender against real local HTTPS and HTTP servers: the checks at send time.

Names resolve through an injected resolver (no DNS); every address answered is
loopback or refused before any connection, and the loopback guard fails a test
that tried otherwise. A certificate authority made for the test signs the
receiver's certificate for ``hooks.test``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailbeacon.webhooks.policy import Outcome
from mailbeacon.webhooks.sender import Sender


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(
    subject: str,
    issuer: str,
    key: ec.EllipticCurvePrivateKey,
    signer: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return builder.sign(signer, hashes.SHA256())


@dataclass
class Receiver:
    port: int
    client_context: ssl.SSLContext | None
    requests: list[dict[str, str]] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    answer: dict[str, object] = field(default_factory=dict)


def _serve(tls_folder: Path | None) -> Iterator[Receiver]:
    receiver = Receiver(0, None)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            receiver.requests.append(
                {**{k.lower(): v for k, v in self.headers.items()}, "body": body.decode()}
            )
            time.sleep(float(receiver.answer.get("hang", 0)))  # type: ignore[arg-type]
            self.send_response(int(receiver.answer.get("status", 200)))  # type: ignore[call-overload]
            for name, value in dict(receiver.answer.get("headers", {})).items():  # type: ignore[call-overload]
                self.send_header(name, value)
            payload = b"x" * int(receiver.answer.get("size", 2))  # type: ignore[call-overload]
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the sender stopped reading (the 64 KB cap)
                self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls_folder is not None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _certificate("mailbeacon test CA", "mailbeacon test CA", ca_key, ca_key, ca=True)
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf = _certificate("hooks.test", "mailbeacon test CA", leaf_key, ca_key, ca=False)
        (tls_folder / "leaf.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        (tls_folder / "leaf.key").write_bytes(
            leaf_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(tls_folder / "leaf.pem", tls_folder / "leaf.key")
        server_context.sni_callback = lambda sock, name, context: receiver.server_names.append(name)
        server.socket = server_context.wrap_socket(server.socket, server_side=True)
        receiver.client_context = ssl.create_default_context(
            cadata=ca.public_bytes(serialization.Encoding.PEM).decode()
        )
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[Receiver]:
    yield from _serve(tmp_path)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from _serve(None)


def to_loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


def post(url: str, *, timeout: float = 5.0, **options: object) -> Outcome:
    async def main() -> Outcome:
        sender = Sender(timeout=timeout, **options)  # type: ignore[arg-type]
        try:
            return await sender.post(url, '{"type": "message.opened"}', {"webhook-id": "msg_1"})
        finally:
            await sender.close()

    return asyncio.run(main())


def post_tls(receiver: Receiver, host: str) -> Outcome:
    """POST to ``https://host:port/in``, the name resolved to loopback, the test CA trusted."""
    url = f"https://{host}:{receiver.port}/in"
    return post(url, allow_private=True, resolver=to_loopback, ssl_context=receiver.client_context)


def test_https_keeps_the_host_name_for_host_sni_and_the_certificate(tls_receiver: Receiver) -> None:
    outcome = post_tls(tls_receiver, "hooks.test")
    assert outcome == Outcome(200, None, None)
    assert tls_receiver.server_names == ["hooks.test"]
    (request,) = tls_receiver.requests
    assert request["host"] == f"hooks.test:{tls_receiver.port}"
    assert request["webhook-id"] == "msg_1"
    assert request["content-type"] == "application/json"
    assert request["body"] == '{"type": "message.opened"}'


def test_a_certificate_for_another_name_is_a_failed_attempt(tls_receiver: Receiver) -> None:
    outcome = post_tls(tls_receiver, "other.test")
    assert outcome.status_code is None
    assert outcome.error is not None
    assert "certificate" in outcome.error.lower()
    assert tls_receiver.requests == []


@pytest.mark.parametrize(
    ("answers", "shown"),
    [
        (["127.0.0.1"], "127.0.0.1"),  # rebinding: the name now points at this machine
        (["127.0.0.1", "::1"], "127.0.0.1"),
    ],
)
def test_a_name_that_now_resolves_to_a_refused_address_is_not_connected(
    receiver: Receiver, answers: list[str], shown: str
) -> None:
    # A real listener on that address would answer: it must not see the request.
    outcome = post(
        f"http://hooks.test:{receiver.port}/in", allow_private=False, resolver=lambda h, p: answers
    )
    assert outcome.status_code is None
    assert outcome.error is not None
    # Plain http is refused first in public mode; over https the address is the reason.
    assert outcome.error.startswith("refused: ")
    https = post(f"https://hooks.test:{receiver.port}/in", allow_private=False, resolver=lambda h, p: answers)
    assert https.status_code is None
    assert https.error == (
        f"refused: 'hooks.test' resolves to {shown}, which is loopback (127.0.0.0/8);"
        " webhooks go to public addresses only"
        " (MAILBEACON_WEBHOOK_ALLOW_PRIVATE=true allows private receivers)"
    )
    assert receiver.requests == []


@pytest.mark.parametrize(
    "answers", [["169.254.169.254"], ["10.0.0.7"], ["203.0.113.9", "10.1.2.3"], ["100.64.0.1"]]
)
def test_any_refused_address_among_the_answers_refuses_the_connection(answers: list[str]) -> None:
    # 203.0.113.9 passes on its own; the guard would fail the test had anything connected.
    outcome = post("https://hooks.test/in", allow_private=False, resolver=lambda h, p: answers)
    assert outcome.status_code is None
    assert outcome.error is not None
    assert outcome.error.startswith("refused: 'hooks.test' resolves to ")
    assert "webhooks go to public addresses only" in outcome.error


@pytest.mark.parametrize(
    "url", ["https://169.254.169.254/latest/meta-data", "https://10.0.0.1/", "https://[::1]/"]
)
def test_an_address_literal_is_refused_without_a_lookup(url: str) -> None:
    def no_lookup(host: str, port: int) -> list[str]:
        raise AssertionError(f"looked up {host}")

    async def main() -> tuple[Outcome, Outcome]:
        sender = Sender(timeout=5, allow_private=False, resolver=no_lookup)
        try:
            return await sender.post(url, "{}", {}), await sender.post(url, "{}", {})
        finally:
            await sender.close()

    first, second = asyncio.run(main())
    assert first == second  # remembered, the same answer
    assert first.status_code is None
    assert first.error is not None
    assert first.error.startswith("refused: ")
    assert "public addresses only" in first.error


def test_a_redirect_is_a_failure_and_is_not_followed(receiver: Receiver) -> None:
    receiver.answer = {"status": 302, "headers": {"Location": f"http://127.0.0.1:{receiver.port}/elsewhere"}}
    outcome = post(f"http://127.0.0.1:{receiver.port}/in", allow_private=True)
    assert outcome.status_code == 302
    assert outcome.error == "redirects are not followed; give the final URL"
    assert len(receiver.requests) == 1


def test_retry_after_and_error_codes_are_reported(receiver: Receiver) -> None:
    receiver.answer = {"status": 503, "headers": {"Retry-After": "120"}}
    outcome = post(f"http://127.0.0.1:{receiver.port}/in", allow_private=True)
    assert outcome.status_code == 503
    assert outcome.error == "HTTP 503"
    assert outcome.retry_after == 120.0


def test_a_receiver_that_hangs_is_cut_off_at_the_timeout(receiver: Receiver) -> None:
    receiver.answer = {"hang": 3}
    started = time.monotonic()
    outcome = post(f"http://127.0.0.1:{receiver.port}/in", allow_private=True, timeout=0.5)
    assert time.monotonic() - started < 2.5
    assert outcome == Outcome(None, "no answer within 0.5 s", None)


def test_a_huge_answer_is_not_read_to_the_end(receiver: Receiver) -> None:
    receiver.answer = {"size": 50 * 1024 * 1024}
    started = time.monotonic()
    outcome = post(f"http://127.0.0.1:{receiver.port}/in", allow_private=True)
    assert outcome.status_code == 200
    assert time.monotonic() - started < 3
