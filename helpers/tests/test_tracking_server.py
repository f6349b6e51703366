"""Tests of dslc against tracking servers that misbehave, all on loopback.

A tiny scripted HTTP server answers /health and fails the API (500, 503 once, a dropped
connection, 401 without credentials); a real `mlflow server` behind a fault-injecting
proxy checks that runs ride out transient errors and fail fast on persistent ones.
The number of requests a server receives shows that retries are bounded (tests never
assert on elapsed time).
"""

from __future__ import annotations

import base64
import http.client
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

mlflow = pytest.importorskip("mlflow", reason="mlflow not installed (dslc[tracking] extra)")
pytest.importorskip("filelock", reason="filelock not installed (dslc[tracking] extra)")

from dslc import tracking  # noqa: E402
from dslc.tracking import _store  # noqa: E402

API = "/api/2.0/mlflow/"
# What a handler does with a request: (status, body), or None to drop the connection.
Answer = Callable[[str, str], "tuple[int, bytes] | None"]


@dataclass
class Scripted:
    """A loopback HTTP server whose answers a test chooses; it records every request."""

    answer: Answer
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    url: str = ""

    def count(self, prefix: str) -> int:
        return sum(path.startswith(prefix) for _, path, _ in self.requests)


def _handler(server: Scripted) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            server.requests.append((self.command, self.path, self.headers.get("Authorization")))
            answer = server.answer(self.command, self.path)
            if answer is None:  # drop the connection without a word
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            status, body = answer
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

    return Handler


@pytest.fixture
def scripted() -> Iterator[Callable[[Answer], Scripted]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(answer: Answer) -> Scripted:
        state = Scripted(answer)
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
        threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True).start()
        servers.append(httpd)
        state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        return state

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


def use(project: Path, uri: str) -> None:
    (project / ".env").write_text(f"MLFLOW_TRACKING_URI={uri}\n", encoding="utf-8")


def health_ok_api(api: Callable[[int], tuple[int, bytes] | None]) -> Answer:
    """/health answers 200; the n-th API request (from 0) gets ``api(n)``."""
    calls = {"n": 0}

    def answer(method: str, path: str) -> tuple[int, bytes] | None:
        if path == "/health":
            return 200, b"OK"
        n = calls["n"]
        calls["n"] += 1
        return api(n)

    return answer


EMPTY = (200, b'{"experiments": []}')


# -- the probe -------------------------------------------------------------------------


def test_health_ok_but_api_500_fails_fast_in_one_line(
    project: Path, scripted: Callable[[Answer], Scripted]
) -> None:
    server = scripted(health_ok_api(lambda n: (500, b'{"error_code": "INTERNAL_ERROR"}')))
    use(project, server.url)
    with pytest.raises(tracking.TrackingServerError) as exc, tracking.run():
        pass
    message = str(exc.value)
    assert "\n" not in message and server.url in message and "HTTP 500" in message
    assert ".env" in message
    # Bounded: the probe's 4 attempts, and no run was ever started.
    assert server.count(API) == _store.PROBE_ATTEMPTS
    assert server.count(f"{API}runs/create") == 0


@pytest.mark.parametrize(
    ("first", "kind"),
    [((503, b"busy"), "a 503 once"), (None, "a dropped connection")],
)
def test_transient_failures_are_retried(
    project: Path,
    scripted: Callable[[Answer], Scripted],
    first: tuple[int, bytes] | None,
    kind: str,
) -> None:
    server = scripted(health_ok_api(lambda n: first if n == 0 else EMPTY))
    use(project, server.url)
    assert tracking.ensure_store() == server.url, kind
    assert server.count(API) == 2


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (404, tracking.TrackingServerError, "does not look like an MLflow tracking server"),
        (401, tracking.TrackingError, "refused the credentials (HTTP 401)"),
        (403, tracking.TrackingError, "refused the credentials (HTTP 403)"),
    ],
)
def test_other_answers_are_named(
    project: Path,
    scripted: Callable[[Answer], Scripted],
    status: int,
    error: type[Exception],
    words: str,
) -> None:
    server = scripted(health_ok_api(lambda n: (status, b"{}")))
    use(project, server.url)
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        tracking.ensure_store()
    assert server.count(API) == 1  # not a transient failure: no retry


def test_credentials_in_the_uri_are_used_and_never_shown(
    project: Path, scripted: Callable[[Answer], Scripted]
) -> None:
    expected = "Basic " + base64.b64encode(b"alice:p@ss w:rd").decode()

    def needs_auth(method: str, path: str) -> tuple[int, bytes] | None:
        if path == "/health":
            return 200, b"OK"
        auth = server.requests[-1][2]
        return EMPTY if auth == expected else (401, b'{"error_code": "UNAUTHENTICATED"}')

    server = scripted(needs_auth)
    host = server.url.removeprefix("http://")
    use(project, f"http://alice:p%40ss%20w%3Ard@{host}")
    assert tracking.ensure_store() == server.url  # used without the credentials
    assert mlflow.get_tracking_uri() == server.url
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "alice"
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "p@ss w:rd"
    assert server.requests[-1][2] == expected


def test_wrong_credentials_and_unreachable_never_print_the_password(
    project: Path, scripted: Callable[[Answer], Scripted]
) -> None:
    server = scripted(health_ok_api(lambda n: (401, b"{}")))
    host = server.url.removeprefix("http://")
    use(project, f"http://alice:Wr0ng-Secret@{host}")
    with pytest.raises(tracking.TrackingError) as exc:
        tracking.ensure_store()
    assert "refused the credentials" in str(exc.value)
    assert "Wr0ng-Secret" not in str(exc.value) and "alice" not in str(exc.value)

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for loaded in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        os.environ.pop(loaded)  # loaded from the first .env; the new one must count
    use(project, f"https://alice:Wr0ng-Secret@127.0.0.1:{port}")
    with pytest.raises(tracking.TrackingServerUnreachable) as exc2:
        tracking.ensure_store()
    assert f"https://127.0.0.1:{port}" in str(exc2.value)
    assert "Wr0ng-Secret" not in str(exc2.value)


def test_http_retries_are_bounded_unless_the_user_set_them(
    project: Path, scripted: Callable[[Answer], Scripted]
) -> None:
    server = scripted(health_ok_api(lambda n: EMPTY))
    (project / ".env").write_text(
        f"MLFLOW_TRACKING_URI={server.url}\nMLFLOW_HTTP_REQUEST_TIMEOUT=77\n", encoding="utf-8"
    )
    tracking.ensure_store()
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "3"
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "1"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "77"  # the user's value wins


# -- a real server behind a faulty proxy -----------------------------------------------


@dataclass
class Proxy:
    """Forwards to the real server; ``faults`` are consumed by matching API requests."""

    upstream: int
    faults: list[tuple[str, tuple[int, bytes] | None]] = field(default_factory=list)
    fail_api: bool = False  # every API request answers 500
    failed: int = 0  # API requests answered 500 because of fail_api
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Any:
        with self.lock:
            if path.startswith("/api/") and self.fail_api:
                self.failed += 1
                return 500, b'{"error_code": "INTERNAL_ERROR", "message": "db down"}'
            for i, (prefix, fault) in enumerate(self.faults):
                if path.startswith(prefix):
                    del self.faults[i]
                    return fault
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()


def _proxy_handler(proxy: Proxy) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            keep = ("Content-Type", "Authorization")
            headers = {k: v for k, v in self.headers.items() if k in keep}
            answer = proxy.answer(self.command, self.path, body, headers)
            if answer is None:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            status, payload = answer
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real `mlflow server` on loopback (SQLite backend, proxied artifacts)."""
    folder = tmp_path_factory.mktemp("server")
    port = _free_port()
    cmd = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
        "--artifacts-destination", str(folder / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    log = (folder / "server.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300  # a generous guard for a loaded machine
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail("mlflow server exited: " + (folder / "server.log").read_text()[-2000:])
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not start in 300 s")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


@pytest.fixture
def proxy(mlflow_server: int) -> Iterator[tuple[Proxy, str]]:
    state = Proxy(mlflow_server)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _proxy_handler(state))
    threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True).start()
    yield state, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.slow
def test_a_run_rides_out_transient_errors_and_fails_fast_on_persistent_ones(
    project: Path, proxy: tuple[Proxy, str]
) -> None:
    state, url = proxy
    use(project, url)
    log_batch = f"{API}runs/log-batch"
    # The first two log-batch requests (params, then metrics): a drop, then a 503.
    state.faults = [(log_batch, None), (log_batch, (503, b"busy"))]
    with tracking.run(params={"C": 1}) as run:
        for step in range(1500):  # two metric batches
            run.log_metric("loss", 1.0 / (step + 1), step=step)
    assert state.faults == []  # both faults were hit, and ridden out
    stored = tracking.client().get_run(run.id)
    assert stored.info.status == "FINISHED" and stored.data.params == {"C": "1"}
    history = tracking.client().get_metric_history(run.id, "loss")
    assert sorted(m.step for m in history) == list(range(1500))

    with tracking.run() as failing:
        failing.log_metric("m", 1.0)
        state.fail_api = True  # the server's database goes down mid-run
        with pytest.raises(tracking.TrackingError) as exc:
            failing.flush()
        sent_to_the_failing_api = state.failed
        state.fail_api = False
    message = str(exc.value)
    assert "\n" not in message and "stay buffered" in message and url in message
    # MLflow retried, but a bounded number of times (dslc's default: 3 retries).
    assert (
        2
        <= sent_to_the_failing_api
        <= 1 + int(_store.HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_MAX_RETRIES"])
    )
    assert tracking.client().get_run(failing.id).data.metrics == {"m": 1.0}  # sent at the end
