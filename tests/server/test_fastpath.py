"""The tracking fast path (``server.fastpath``) speaks HTTP/1.1 as a client expects.

Tracking GETs are answered inside the HTTP protocol, not by an ASGI task, so what the
ASGI server used to do for them is checked here on the wire: keep-alive, pipelined
requests answered in order (also mixed with API requests), ``HEAD``, HTTP/1.0 and
``Connection: close``, a client that hangs up before its answer, and the size limits.
"""

from __future__ import annotations

import contextlib
import socket
import time

from mailbeacon.server.fastpath import MAX_HEADER_BYTES, MAX_HEADERS, MAX_TARGET
from mailbeacon.server.responses import GIF

from .harness import Server


def _path(url: str) -> bytes:
    return url[url.index("/", len("http://")) :].encode()


Response = tuple[int, dict[bytes, bytes], bytes]


def _read_responses(connection: socket.socket, count: int, timeout: float = 10) -> list[Response]:
    """Read ``count`` responses (each with a content-length) off one connection."""
    connection.settimeout(timeout)
    data = b""
    found: list[Response] = []
    while len(found) < count:
        while b"\r\n\r\n" not in data:
            chunk = connection.recv(65536)
            assert chunk, f"connection closed after {len(found)} responses"
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get(b"content-length", b"0"))
        while len(data) < length:
            chunk = connection.recv(65536)
            assert chunk, "connection closed inside a body"
            data += chunk
        found.append((status, headers, data[:length]))
        data = data[length:]
    return found


def _request(path: bytes, method: bytes = b"GET", extra: bytes = b"", version: bytes = b"HTTP/1.1") -> bytes:
    return method + b" " + path + b" " + version + b"\r\nHost: 127.0.0.1\r\n" + extra + b"\r\n"


def test_keep_alive_serves_many_pixels_on_one_connection(server: Server, key: str) -> None:
    tracker = server.tracker()
    paths = [_path(tracker.open_url(message_id=f"fp-ka-{i}")) for i in range(50)]
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        for path in paths:
            connection.sendall(_request(path))
            ((status, headers, body),) = _read_responses(connection, 1)
            assert (status, body) == (200, GIF)
            assert headers[b"content-type"] == b"image/gif"
            assert headers[b"cache-control"] == b"no-store, no-cache, must-revalidate, private"
            assert b"date" in headers
            assert b"connection" not in headers  # kept alive
            assert b"server" not in headers  # the server does not advertise itself


def test_pipelined_requests_are_answered_in_order_mixed_with_api_requests(server: Server, key: str) -> None:
    tracker = server.tracker()
    click = _path(tracker.click_url("https://shop.example/a?b=1", message_id="fp-pipe"))
    forged = b"/c/" + b"A" * 40
    pipeline = [
        _request(_path(tracker.open_url(message_id="fp-pipe"))),
        _request(b"/healthz"),
        _request(click),
        _request(forged),
        _request(b"/api/v1/messages", extra=f"Authorization: Bearer {key}\r\n".encode()),
        _request(_path(tracker.open_url(message_id="fp-pipe-2"))),
    ]
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(b"".join(pipeline))
        answers = _read_responses(connection, len(pipeline))
    statuses = [status for status, _, _ in answers]
    assert statuses == [200, 200, 302, 404, 200, 200]
    assert answers[0][2] == GIF
    assert answers[5][2] == GIF
    assert answers[1][2] == b"ok\n"
    assert answers[2][1][b"location"] == b"https://shop.example/a?b=1"
    assert b"data" in answers[4][2]  # the API's JSON list, in its place


def test_the_api_path_gets_the_request_as_parsed_after_a_tracking_hit_on_the_connection(
    server: Server, key: str
) -> None:
    # The ASGI scope is built only for requests that leave the fast path, from what the
    # parser collected: headers (trailing whitespace cut), query, Expect: 100-continue.
    body = b'{"recipient": "r-scope", "html": "<p>Hi</p>", "campaign": "scope"}'
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(_request(_path(server.tracker().open_url(message_id="fp-scope"))))
        ((status, _, _),) = _read_responses(connection, 1)
        assert status == 200
        connection.sendall(
            b"POST /api/v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Authorization: Bearer {key}   \r\n".encode()
            + b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
            + b"Content-Length: %d\r\n\r\n" % len(body)
        )
        interim = connection.recv(64)
        assert interim.startswith(b"HTTP/1.1 100 ")  # uvicorn answered the Expect it was handed
        connection.sendall(body)
        ((status, _, created),) = _read_responses(connection, 1)
        assert status == 201, created
        connection.sendall(
            _request(b"/api/v1/messages?campaign=scope", extra=f"Authorization: Bearer {key}\r\n".encode())
        )
        ((status, _, listed),) = _read_responses(connection, 1)
    assert status == 200
    assert b"r-scope" in listed


def _registered(server: Server, key: str) -> dict[str, str]:
    response = server.client(key).post("/api/v1/messages", json={"recipient": "r-1", "html": "<p>Hi</p>"})
    assert response.status_code == 201, response.text
    created: dict[str, str] = response.json()
    return created


def _events(server: Server, key: str, message_id: str) -> list[str]:
    response = server.client(key).get(f"/api/v1/messages/{message_id}")
    assert response.status_code == 200, response.text
    return [event["type"] for event in response.json()["events"]]


def test_head_is_answered_with_headers_only_and_records_nothing(server: Server, key: str) -> None:
    created = _registered(server, key)
    url = created["open_url"]
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(_request(_path(url), method=b"HEAD") + _request(b"/healthz"))
        connection.settimeout(10)
        data = b""
        while data.count(b"\r\n\r\n") < 2 or not data.endswith(b"ok\n"):
            chunk = connection.recv(65536)
            assert chunk
            data += chunk
    head_response, _, rest = data.partition(b"\r\n\r\n")
    assert head_response.startswith(b"HTTP/1.1 200 ")
    assert b"content-length: 43" in head_response.lower()
    assert rest.startswith(b"HTTP/1.1 200 ")  # no GIF bytes between the two answers
    assert _events(server, key, created["id"]) == ["sent"]
    with socket.create_connection(("127.0.0.1", server.port)) as connection:  # while a GET records
        connection.sendall(_request(_path(url)))
        _read_responses(connection, 1)
    assert _events(server, key, created["id"]) == ["sent", "opened"]


def test_http_1_0_and_connection_close_close_after_the_answer(server: Server) -> None:
    tracker = server.tracker()
    for request in (
        _request(_path(tracker.open_url(message_id="fp-10")), version=b"HTTP/1.0"),
        _request(_path(tracker.open_url(message_id="fp-close")), extra=b"Connection: close\r\n"),
    ):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
            connection.sendall(request)
            data = b""
            while chunk := connection.recv(65536):  # ends only when the server closes
                data += chunk
        assert data.startswith(b"HTTP/1.1 200 ")
        assert b"connection: close" in data.lower()
        assert data.endswith(GIF)


def test_an_idle_keep_alive_connection_is_closed_after_the_timeout_and_not_before(server: Server) -> None:
    # uvicorn's default keep-alive timeout is 5 s; the fast path sweeps idle connections
    # once a second instead of arming a timer per response, so it closes within 5-6 s.
    tracker = server.tracker()
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as connection:
        for i in range(2):  # the second request starts after a pause: the first idle spell ended
            connection.sendall(_request(_path(tracker.open_url(message_id=f"fp-idle-{i}"))))
            ((status, _, _),) = _read_responses(connection, 1)
            assert status == 200
            if i == 0:
                time.sleep(3)
        idle_from = time.monotonic()
        connection.settimeout(15)
        assert connection.recv(1) == b""  # the server closed it
        idle = time.monotonic() - idle_from
    assert 4.5 <= idle <= 7.5, idle


def test_a_client_that_hangs_up_early_leaves_the_server_serving(server: Server, key: str) -> None:
    tracker = server.tracker()
    for i in range(20):
        connection = socket.create_connection(("127.0.0.1", server.port))
        connection.sendall(_request(_path(tracker.open_url(message_id=f"fp-gone-{i}"))) * 3)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        connection.close()  # a reset, before the answers
    created = _registered(server, key)
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(_request(_path(created["open_url"])))
        ((status, _, body),) = _read_responses(connection, 1)
    assert (status, body) == (200, GIF)
    assert _events(server, key, created["id"]) == ["sent", "opened"]  # read-your-hit still holds


def _status_of(server: Server, raw: bytes) -> int | None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(raw)
        try:
            reply = connection.recv(200)
        except ConnectionResetError:
            return None
    return int(reply[9:12]) if reply.startswith(b"HTTP/1.1 ") else None


def test_limits_refuse_oversized_targets_and_headers_before_any_work(server: Server) -> None:
    assert _status_of(server, _request(b"/o/" + b"A" * (MAX_TARGET + 1))) == 414
    assert _status_of(server, _request(b"/api/v1/messages?x=" + b"A" * (MAX_TARGET + 1))) == 414
    many = b"".join(b"X-H-%d: v\r\n" % i for i in range(MAX_HEADERS + 5))
    assert _status_of(server, _request(b"/o/x", extra=many)) == 431
    big = b"X-Big: " + b"v" * (MAX_HEADER_BYTES + 10) + b"\r\n"
    assert _status_of(server, _request(b"/healthz", extra=big)) == 431
    # just under the limits is served
    assert _status_of(server, _request(b"/o/" + b"A" * 4000)) == 200
    fine = b"".join(b"X-H-%d: v\r\n" % i for i in range(MAX_HEADERS - 5))
    assert _status_of(server, _request(b"/healthz", extra=fine)) == 200


def test_a_malformed_request_gets_a_400_and_the_server_stays_up(server: Server) -> None:
    assert _status_of(server, b"GET /o/x HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n") == 400
    assert _status_of(server, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 50) == 400
    assert _status_of(server, _request(b"/healthz")) == 200
