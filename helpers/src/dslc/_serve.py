"""``dslc serve``: MLflow's scoring server behind a guard that answers with a short 4xx what
MLflow answers badly (500 to a huge number or deep nesting, a 400 repeating a 60 MB body
whole) and cuts every error answer (ARCHITECTURE.md, Serving)."""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .errors import DslcError

MAX_DEPTH = 32  # tensors of rank 30 still fit; no model input nests deeper
MAX_NUMBER_CHARS = 100  # a float64 needs 24 characters, an int64 20
MAX_ERROR_CHARS = 500  # of an error message passed on to the client
START_TIMEOUT = 120.0  # seconds MLflow may take to load the model


class Refused(Exception):
    """A request the guard answers itself: ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def check_json(body: bytes) -> None:
    """Raise :class:`Refused` for JSON that MLflow cannot answer with a 4xx itself."""

    def number(text: str) -> float | int:
        if len(text) > MAX_NUMBER_CHARS:
            raise Refused(400, f"a number of {len(text)} characters; at most {MAX_NUMBER_CHARS}")
        return float(text) if any(c in text for c in ".eE") else int(text)

    def constant(text: str) -> float:
        raise Refused(400, f"{text} is not a JSON number; send null for a missing value")

    try:
        document = json.loads(body, parse_int=number, parse_float=number, parse_constant=constant)
    except RecursionError:
        raise Refused(400, f"JSON nested too deeply; at most {MAX_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, f"the body is not valid JSON: {str(exc)[:MAX_ERROR_CHARS]}") from None
    level = [document] if isinstance(document, (list, dict)) else []  # the containers at a depth
    for _ in range(MAX_DEPTH):
        children = (item.values() if isinstance(item, dict) else item for item in level)
        level = [c for values in children for c in values if isinstance(c, (list, dict))]
    if level:
        raise Refused(400, f"JSON nested too deeply; at most {MAX_DEPTH} levels")


def short_error(status: int, body: bytes) -> bytes:
    """An error answer of at most a few hundred bytes: MLflow's code and message, cut."""
    if len(body) <= MAX_ERROR_CHARS * 2:
        return body
    try:
        error = json.loads(body)
        code, message = str(error.get("error_code", "")), str(error.get("message", ""))
    except (ValueError, AttributeError):
        code, message = "", body[:MAX_ERROR_CHARS].decode("utf-8", "replace")
    if len(message) > MAX_ERROR_CHARS:
        message = f"{message[:MAX_ERROR_CHARS]}... ({len(message)} characters, cut)"
    return json.dumps({"error_code": code or f"HTTP_{status}", "message": message}).encode()


class Guard(http.server.ThreadingHTTPServer):
    """The public server: checks each request, then forwards it to ``upstream``."""

    def __init__(self, address: tuple[str, int], upstream: tuple[str, int], max_bytes: int):
        self.upstream, self.max_bytes = upstream, max_bytes
        super().__init__(address, _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Guard
    upstream: http.client.HTTPConnection | None = None
    protocol_version = "HTTP/1.1"  # keep-alive: one-row latency is what clients feel
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms wait

    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        try:
            body = self._body()
            if self.headers.get_content_type() == "application/json":
                check_json(body)
        except Refused as refused:
            self._reply(refused.status, json.dumps({"error_code": "BAD_REQUEST",
                                                    "message": str(refused)}).encode())  # fmt: skip
            return
        self._handle(body)

    def _body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or length is None:
            self.close_connection = True
            raise Refused(411, "send the body with a Content-Length header")
        if not length.isdigit():
            self.close_connection = True
            raise Refused(400, f"Content-Length {length[:40]!r} is not a number of bytes")
        if int(length) > self.server.max_bytes:
            self.close_connection = True  # the body stays unread
            raise Refused(413, f"the body is {int(length):,} bytes; this server takes at most "
                               f"{self.server.max_bytes:,} (dslc serve --max-mb)")  # fmt: skip
        return self.rfile.read(int(length))

    def _handle(self, body: bytes) -> None:
        if self.upstream is None:  # kept alive for this client's thread: ~1 ms a request less
            self.upstream = http.client.HTTPConnection(*self.server.upstream, timeout=300)
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept")}
        for _ in range(2):  # once more after a kept-alive connection the upstream closed
            try:
                self.upstream.request(self.command, self.path, body or None, headers)
                response = self.upstream.getresponse()
                answer = response.read()
                break
            except (OSError, http.client.HTTPException):
                self.upstream.close()  # the next request opens a new connection
        else:
            self._reply(503, b'{"error_code": "UNAVAILABLE", "message": "model server down"}')
            return
        status, kind = response.status, response.getheader("Content-Type", "application/json")
        self._reply(status, short_error(status, answer) if status >= 400 else answer, kind)

    def _reply(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # MLflow's server logs each request it answers; refusals are the client's


def wait_until_up(port: int, child: subprocess.Popen[bytes]) -> None:
    """Return once MLflow answers /ping; raise if it exits or takes too long."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise DslcError(f"MLflow's model server stopped (exit {child.returncode}); see above")
        with contextlib.suppress(OSError):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                return
        time.sleep(0.2)
    raise DslcError(f"MLflow's model server did not answer within {START_TIMEOUT:.0f} s")


def _stop_with(child: subprocess.Popen[bytes], guard: Guard) -> None:
    child.wait()  # MLflow's server gone (crash, kill): the guard has nothing to forward to
    guard.shutdown()


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds serve_forever; serve's cleanup stops MLflow


def serve(model_uri: str, guard: Guard, env: dict[str, str], ready: str) -> int:
    """Run ``mlflow models serve`` on a loopback port behind ``guard`` until either stops;
    ``ready`` goes to stderr once MLflow answers."""
    with socket.socket() as probe:  # a free loopback port for MLflow
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    command = [sys.executable, "-m", "mlflow", "models", "serve", "--model-uri", model_uri,
               "--host", "127.0.0.1", "--port", str(port), "--env-manager", "local"]  # fmt: skip
    guard.upstream = ("127.0.0.1", port)
    # MLflow starts `uvicorn` by name: this environment's, even when it is not on PATH.
    path = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    # Its own process group: stopping it stops the uvicorn it starts too.
    child = subprocess.Popen(command, env={**env, "PATH": path}, start_new_session=True)
    signal.signal(signal.SIGTERM, _terminated)
    try:
        wait_until_up(port, child)
        print(ready, file=sys.stderr, flush=True)
        threading.Thread(target=_stop_with, args=(child, guard), daemon=True).start()
        guard.serve_forever()
    finally:
        guard.server_close()
        with contextlib.suppress(ProcessLookupError):  # MLflow's group: its uvicorn too
            os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
    return max(child.returncode or 0, 0)  # 0 when stopped by a signal


def package(uri: str, output: Path, env: dict[str, str]) -> None:
    """``mlflow models generate-dockerfile`` into ``output`` (replaced whole); no folder and a
    one-line DslcError if MLflow fails or the model needs a file of this machine."""
    shutil.rmtree(output, ignore_errors=True)
    command = [sys.executable, "-m", "mlflow", "models", "generate-dockerfile"]
    command += ["--model-uri", uri, "--output-directory", str(output)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = result.stderr.strip().splitlines() or ["no output"]
    # The exception's line of a traceback, else the last line MLflow printed.
    problem = ([ln for ln in lines if re.match(r"[\w.]+(Error|Exception)\b", ln)] or lines)[-1]
    if result.returncode == 0:
        lines = (output / "model_dir" / "requirements.txt").read_text().splitlines()
        if not (local := [line for line in lines if "file:" in line]):
            return
        problem = f"{uri} requires a folder of this machine ({local[0]}); run `make train`"
    shutil.rmtree(output, ignore_errors=True)
    raise DslcError(f"mlflow models generate-dockerfile: {problem}")
