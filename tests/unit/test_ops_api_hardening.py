"""The ops API against hostile clients: deep JSON, credentials in URLs, short tokens, too many connections."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from tests.unit.serve_support import TOKEN, FakeWorker, connection, make_worker, reset_structlog
from worker import exit_codes
from worker.cli.app import main
from worker.serve.ops_api import MAX_JSON_DEPTH, create_app, json_depth_exceeds, looks_like_credential
from worker.serve.ops_server import (
    BACKLOG,
    HEAD_TIMEOUT_SECONDS,
    KEEP_ALIVE_SECONDS,
    MAX_CONNECTIONS,
    MAX_HEAD_BYTES,
    HeadDeadlineProtocol,
    server_config,
)

AUTH = {"Authorization": f"Bearer {TOKEN}"}
BODY_LIMIT = 16_384

default_structlog = pytest.fixture(autouse=True)(reset_structlog)


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[FakeWorker]:
    w = make_worker(tmp_path, connection("main"))
    yield w
    w.close()


@pytest.fixture
def client(worker: FakeWorker) -> Iterator[TestClient]:
    with TestClient(create_app(worker, TOKEN, BODY_LIMIT), base_url="http://127.0.0.1") as test_client:
        yield test_client


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize(
    "body",
    [b"[" * 6000 + b"]" * 6000, nested(2500), nested(MAX_JSON_DEPTH + 1), b"[" * 6000],
    ids=["arrays-6000", "objects-2500", "objects-33", "unclosed-6000"],
)
def test_deeply_nested_json_is_one_400_not_a_crash(
    client: TestClient, worker: FakeWorker, body: bytes
) -> None:
    """A body nested past MAX_JSON_DEPTH is refused before parsing (it was a 500 from RecursionError)."""
    with capture_logs() as logs:
        response = client.post("/resync", headers=AUTH, content=body)
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error": f"the body nests deeper than {MAX_JSON_DEPTH} levels: send a flat object such as "
        '{"full": true}',
        "kind": "BadRequest",
        "problems": [],
        "hint": None,
    }
    assert not [entry for entry in logs if entry.get("log_level") == "error"]
    assert worker.store.list_runs() == []


def test_nesting_up_to_the_limit_is_parsed(client: TestClient) -> None:
    """At MAX_JSON_DEPTH the body is parsed and judged on its content (an unknown option here)."""
    response = client.post("/resync", headers=AUTH, content=nested(MAX_JSON_DEPTH))
    assert response.status_code == 422
    assert "unknown option 'a'" in response.json()["error"]


@pytest.mark.parametrize(
    ("text", "limit", "too_deep"),
    [
        (b'{"deal": "[[[[[[[[[["}', 1, False),
        (b'{"deal": "\\"[[[[[[[[[["}', 1, False),
        (b'{"deal": "\\\\"}' + b"[[", 1, True),
        (b"[[[]]]", 3, False),
        (b"[[[[]]]]", 3, True),
        (b"[[]][[]][[]]", 2, False),
    ],
    ids=[
        "brackets-in-string",
        "escaped-quote",
        "escaped-backslash-ends-string",
        "at-limit",
        "over-limit",
        "siblings",
    ],
)
def test_depth_scan_ignores_brackets_inside_strings(text: bytes, limit: int, too_deep: bool) -> None:
    assert json_depth_exceeds(text, limit) is too_deep


CREDENTIAL_NAMES = [
    "token",
    "access_token",
    "api_key",
    "apikey",
    "API-Key",
    "x-api-key",
    "bearer_token",
    "bearer",
    "auth",
    "Authorization",
    "key",
    "password",
    "passwd",
    "secret",
    "client_secret",
    "refresh_token",
    "ops_token",
]


@pytest.mark.parametrize("name", CREDENTIAL_NAMES)
@pytest.mark.parametrize("path", ["/runs", "/health", "/resync"])
def test_credential_looking_query_parameters_are_refused(
    client: TestClient, worker: FakeWorker, name: str, path: str
) -> None:
    """Any query parameter named like a credential is a 400 telling to use the Authorization header, even
    with the right token in the header too and on /health; the value is never echoed or logged."""
    with capture_logs() as logs:
        if path == "/resync":
            response = client.post(path, headers=AUTH, params={name: TOKEN}, json={})
        else:
            response = client.get(path, headers=AUTH, params={name: TOKEN})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert "Authorization: Bearer <token>" in error and repr(name) in error
    assert TOKEN not in response.text and TOKEN not in repr(logs)
    assert worker.store.list_runs() == []


@pytest.mark.parametrize("name", ["limit", "connection", "monkey", "keyword", "author_id", "offset"])
def test_ordinary_query_parameters_pass(name: str) -> None:
    assert not looks_like_credential(name)


def test_list_runs_with_ordinary_parameters_still_works(client: TestClient) -> None:
    response = client.get("/runs", headers=AUTH, params={"limit": "5", "connection": "main"})
    assert response.status_code == 200


@pytest.mark.parametrize("token", ["", "x" * 31])
def test_app_refuses_a_token_shorter_than_32(worker: FakeWorker, token: str) -> None:
    with pytest.raises(ValueError, match=r"BANT_SYNC_OPS_TOKEN|at least 32"):
        create_app(worker, token, BODY_LIMIT)


def test_server_config_sets_every_limit_explicitly(worker: FakeWorker) -> None:
    config = server_config(create_app(worker, TOKEN, BODY_LIMIT), "127.0.0.1", 0)
    assert config.limit_concurrency == MAX_CONNECTIONS + 1
    assert config.backlog == BACKLOG
    assert config.timeout_keep_alive == KEEP_ALIVE_SECONDS
    assert config.h11_max_incomplete_event_size == MAX_HEAD_BYTES
    assert isinstance(config.http, type) and issubclass(config.http, HeadDeadlineProtocol)
    assert config.http.head_timeout == HEAD_TIMEOUT_SECONDS


class _ServerThread:
    """A real uvicorn server for `config` in a thread, stopped on exit."""

    def __init__(self, config: uvicorn.Config) -> None:
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> int:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        port: int = self.server.servers[0].sockets[0].getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _get(port: int, path: str, sock: socket.socket | None = None) -> tuple[socket.socket, bytes]:
    """Send one GET on `sock` (a new connection by default) and read the whole answer; returns its head."""
    sock = sock or socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return sock, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return sock, head + b"\r\n\r\n"


def test_connections_over_the_limit_are_answered_503(worker: FakeWorker) -> None:
    """With max_connections open (idle keep-alive) connections, the next request is a 503 and the server
    stays up; once they close, requests are served again."""
    limit = 3
    config = server_config(create_app(worker, TOKEN, BODY_LIMIT), "127.0.0.1", 0, max_connections=limit)
    with _ServerThread(config) as port:
        held = []
        for _ in range(limit):
            sock, head = _get(port, "/health")
            assert head.startswith(b"HTTP/1.1 200"), head
            held.append(sock)
        extra, head = _get(port, "/health")
        assert head.startswith(b"HTTP/1.1 503"), head
        extra.close()
        for sock in held:
            sock.close()
        deadline = time.monotonic() + 5
        while True:
            again, head = _get(port, "/health")
            again.close()
            if head.startswith(b"HTTP/1.1 200") or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert head.startswith(b"HTTP/1.1 200"), head


def test_an_oversized_request_head_is_refused(worker: FakeWorker) -> None:
    """A request head over MAX_HEAD_BYTES is refused (or the connection dropped); the server stays up."""
    config = server_config(create_app(worker, TOKEN, BODY_LIMIT), "127.0.0.1", 0)
    with _ServerThread(config) as port:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            sock.sendall(
                b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (MAX_HEAD_BYTES * 16) + b"\r\n\r\n"
            )
            answer = sock.recv(4096)
        except (ConnectionResetError, BrokenPipeError):
            answer = b""
        finally:
            sock.close()
        assert answer == b"" or answer.startswith((b"HTTP/1.1 400", b"HTTP/1.1 431")), answer
        _sock, head = _get(port, "/health")
        _sock.close()
        assert head.startswith(b"HTTP/1.1 200")


def test_serve_refuses_to_start_with_a_short_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`serve` with a token under 32 characters exits 3 saying how to make one, without showing it."""
    config = tmp_path / "bant.toml"
    config.write_text(f'[state]\ndir = "{tmp_path}"\n[connections.hub]\ncrm = "hubspot"\nenabled = false\n')
    for name in [n for n in os.environ if n.startswith("BANT_SYNC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("BANT_SYNC_OPS_TOKEN", "tok-abc123")
    assert main(["--config", str(config), "serve"]) == exit_codes.CONFIG
    err = capsys.readouterr().err
    assert "at least 32" in err and 'python -c "import secrets; print(secrets.token_urlsafe(32))"' in err
    assert "tok-abc123" not in err


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closes `sock` within `seconds` (reading whatever it sends first)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


HEAD_TIMEOUT = 0.3


def test_a_client_that_sends_nothing_is_disconnected_after_the_head_timeout(worker: FakeWorker) -> None:
    """A connection with no request (or a request head that never ends) no longer holds a slot for good."""
    config = server_config(create_app(worker, TOKEN, BODY_LIMIT), "127.0.0.1", 0, head_timeout=HEAD_TIMEOUT)
    with _ServerThread(config) as port:
        silent = socket.create_connection(("127.0.0.1", port), timeout=5)
        dribbling = socket.create_connection(("127.0.0.1", port), timeout=5)
        dribbling.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        try:
            assert _closed_within(silent, 5)
            assert _closed_within(dribbling, 5)
        finally:
            silent.close()
            dribbling.close()


def test_a_kept_alive_connection_gets_a_fresh_head_deadline_per_request(worker: FakeWorker) -> None:
    """Requests on one connection each get the head deadline; a prompt client is served every time."""
    config = server_config(create_app(worker, TOKEN, BODY_LIMIT), "127.0.0.1", 0, head_timeout=HEAD_TIMEOUT)
    with _ServerThread(config) as port:
        sock, head = _get(port, "/health")
        try:
            assert head.startswith(b"HTTP/1.1 200"), head
            _sock, head = _get(port, "/health", sock)
            assert head.startswith(b"HTTP/1.1 200"), head
            sock.sendall(b"GET /health HTTP/1.1\r\n")
            assert _closed_within(sock, 5)
        finally:
            sock.close()
