"""`dslc serve`'s guard in front of MLflow's scoring server, against a real upstream.

The upstream here is a plain HTTP server that records what reaches it and answers as
MLflow does (a 400 that repeats the body); the template's tests run the guard in front of
MLflow itself (tests/test_pipeline.py).
"""

from __future__ import annotations

import http.client
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dslc import _serve, cli

ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


class Upstream(http.server.ThreadingHTTPServer):
    """Answers 200 with the predictions of one row, or MLflow's 400 echoing the body."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes, str | None]] = []
        super().__init__(("127.0.0.1", 0), _UpstreamHandler)


class _UpstreamHandler(http.server.BaseHTTPRequestHandler):
    server: Upstream
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.server.seen.append(("GET", self.path, b"", None))
        self._answer(200, b"\n")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append(("POST", self.path, body, self.headers["Content-Type"]))
        if body.startswith(b'{"dataframe_records"'):
            self._answer(200, b'{"predictions": ["setosa"]}')
        else:  # MLflow's 400 for a body it cannot read quotes the body whole
            message = f"Invalid input: {body.decode(errors='replace')!r}"
            self._answer(
                400, json.dumps({"error_code": "BAD_REQUEST", "message": message}).encode()
            )

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served() -> Iterator[tuple[_serve.Guard, Upstream]]:
    upstream = Upstream()
    guard = _serve.Guard(("127.0.0.1", 0), upstream.server_address[:2], max_bytes=1_000_000)
    for server in (upstream, guard):  # checking for shutdown every 10 ms, not 0.5 s
        threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    yield guard, upstream
    for server in (guard, upstream):
        server.shutdown()
        server.server_close()


def send(guard: _serve.Guard, body: bytes, headers: dict[str, str] | None = None):
    connection = http.client.HTTPConnection(*guard.server_address[:2], timeout=30)
    headers = {"Content-Type": "application/json", **(headers or {})}
    connection.request("POST", "/invocations", body, headers)
    response = connection.getresponse()
    return response.status, response.read()


def test_a_good_request_reaches_mlflow_unchanged_and_its_answer_comes_back(served):
    guard, upstream = served
    body = json.dumps({"dataframe_records": [ROW]}).encode()
    assert send(guard, body) == (200, b'{"predictions": ["setosa"]}')
    assert upstream.seen == [("POST", "/invocations", body, "application/json")]


HOSTILE = {
    "a number of 5,000 digits": (b'{"dataframe_records": [{"a": ' + b"9" * 5000 + b"}]}", 400),
    "a float of 400 digits": (b'{"dataframe_records": [{"a": 1.' + b"5" * 400 + b"}]}", 400),
    "100,000 nested lists": (b"[" * 100_000 + b"]" * 100_000, 400),
    "100,000 nested objects": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, 400),
    "40 nested lists": (b"[" * 40 + b"]" * 40, 400),
    "NaN": (b'{"dataframe_records": [{"a": NaN}]}', 400),
    "not JSON": (b'{"dataframe_records": [' + b"x" * 1000 + b"]}", 400),
    "not UTF-8": (b'{"dataframe_records": "\xff\xfe"}', 400),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_hostile_json_gets_a_short_4xx_and_never_reaches_mlflow(served, case):
    guard, upstream = served
    body, expected = HOSTILE[case]
    status, answer = send(guard, body)
    assert status == expected, answer
    error = json.loads(answer)
    assert len(answer) < 300 and error["error_code"] == "BAD_REQUEST" and error["message"]
    assert upstream.seen == []


def status_of_headers(guard: _serve.Guard, *headers: str) -> tuple[int, bytes]:
    """Send only a request's head, as a client about to stream a body would; the answer."""
    with socket.create_connection(guard.server_address[:2], timeout=30) as client:
        head = ["POST /invocations HTTP/1.1", "Host: x", "Content-Type: application/json"]
        client.sendall("\r\n".join([*head, *headers, "", ""]).encode())
        response = http.client.HTTPResponse(client)
        response.begin()
        return response.status, response.read()


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (("Content-Length: 1000001",), 413),
        (("Content-Length: 200000000000",), 413),
        (("Transfer-Encoding: chunked",), 411),
        ((), 411),
        (("Content-Length: -5",), 400),
        (("Content-Length: \uff15",), 400),
    ],
)
def test_a_body_too_large_or_of_unknown_length_is_refused_unread(served, headers, status):
    guard, upstream = served
    got, answer = status_of_headers(guard, *headers)
    assert got == status, answer
    assert len(answer) < 300 and json.loads(answer)["message"]
    assert upstream.seen == []


def test_mlflow_errors_that_echo_a_large_body_are_cut(served):
    guard, upstream = served
    body = b"x" * 900_000
    status, answer = send(guard, body, {"Content-Type": "text/csv"})
    assert status == 400 and len(upstream.seen) == 1, "CSV goes to MLflow, which refuses it"
    error = json.loads(answer)
    assert len(answer) < 1000 and error["error_code"] == "BAD_REQUEST"
    assert (
        error["message"].startswith("Invalid input: 'xxx") and "characters, cut" in error["message"]
    )


def test_ping_is_forwarded_and_a_dead_mlflow_gets_503(served):
    guard, upstream = served
    connection = http.client.HTTPConnection(*guard.server_address[:2], timeout=30)
    connection.request("GET", "/ping")
    assert connection.getresponse().status == 200
    upstream.shutdown()
    upstream.server_close()
    status, answer = send(guard, json.dumps({"dataframe_records": [ROW]}).encode())
    assert status == 503 and b"model server down" in answer


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(), children, max_size=3)
    ),
    max_leaves=30,
)


def depth(value: object) -> int:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max((depth(item) for item in value), default=0)
    return 0


def longest_number(value: object) -> int:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return max((longest_number(item) for item in value), default=0)
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return len(json.dumps(value)) if is_number else 0


@given(json_values, st.integers(min_value=0, max_value=40))
def test_check_json_refuses_exactly_too_deep_or_too_long(value, wrap):
    for _ in range(wrap):
        value = [value]
    body = json.dumps(value, allow_nan=False).encode()
    refused = depth(value) > _serve.MAX_DEPTH or longest_number(value) > _serve.MAX_NUMBER_CHARS
    try:
        _serve.check_json(body)
    except _serve.Refused as exc:
        assert refused, f"refused {body[:200]!r}: {exc}"
        assert exc.status == 400
    else:
        assert not refused, f"let through {body[:200]!r}"


def test_serve_without_a_champion_says_so_in_one_line(project: Path, capsys):
    pyproject = project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace("[tool.dslc]", '[tool.dslc]\nmodel = "demo"')
    )
    code = cli.main(["serve", "--port", "5999"])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert code == 1
    assert errors == [
        "dslc: error: no champion model yet (models:/demo@champion): run `make train` first"
    ]
