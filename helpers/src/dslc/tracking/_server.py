"""A tracking server over HTTP: credentials out of the URI, bounded retries, and a
probe that fails in seconds (helpers/README.md, When tracking fails).

The probe asks a real API endpoint because ``/health`` answers even when the server's
database is down; it reads HTTP statuses itself because MLflow's client reports a 401
with a JSON body like any other error.
"""

from __future__ import annotations

import base64
import http.client
import os
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from ._errors import TrackingError, TrackingServerError, TrackingServerUnreachable

# MLflow's HTTP settings dslc sets unless the environment (or .env) has them: at most 3
# retries, waiting 0, 2 and 4 seconds (plus jitter), a request timing out after 30 s.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
PROBE_TIMEOUT_S = 5.0
# The probe's own retries of transient failures: waits between its 4 attempts.
PROBE_BACKOFF_S = (0.5, 1.0, 2.0)
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
API_PATH = "/api/2.0/mlflow/experiments/search?max_results=1"


def prepare(store_uri: str) -> str:
    """Bound MLflow's retries, move credentials out of the URI; returns the clean URI."""
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    parts = urlsplit(store_uri)
    if "@" not in parts.netloc:
        return store_uri
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    if user:
        os.environ.setdefault("MLFLOW_TRACKING_USERNAME", unquote(user))
    if password:
        os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", unquote(password))
    return urlunsplit(parts._replace(netloc=host))


def probe(store_uri: str, root: Path) -> None:
    """Check within seconds that the server answers, and that its API works.

    Raises:
        TrackingServerUnreachable: no answer (after a few tries).
        TrackingServerError: it answers, but with server errors, or is not MLflow.
        TrackingError: it refuses the credentials.
    """
    base, env_file = store_uri.rstrip("/"), root / ".env"
    for path in ("/health", API_PATH):
        status = _get(base, path, env_file)
        where = f"MLflow tracking server {base}"
        if status in (401, 403) and path == API_PATH:
            raise TrackingError(
                f"{where} refused the credentials (HTTP {status}); set "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or user:password in "
                f"MLFLOW_TRACKING_URI) in {env_file}"
            )
        if status == 404 and path == API_PATH:
            raise TrackingServerError(
                f"{base} does not look like an MLflow tracking server (HTTP 404 on "
                f"{API_PATH.split('?')[0]}); fix MLFLOW_TRACKING_URI in {env_file}"
            )
        if status is not None and status >= 500:
            raise TrackingServerError(
                f"{where} answers but fails: GET {path.split('?')[0]} gave HTTP {status} "
                f"{http.client.responses.get(status, '')} {len(PROBE_BACKOFF_S) + 1} times; "
                f"look at the server's log (is its database up?), or fix MLFLOW_TRACKING_URI "
                f"in {env_file}"
            )


def _get(base: str, path: str, env_file: Path) -> int | None:
    """HTTP status of GET ``path`` (None for a 2xx), retrying transient failures."""
    request = urllib.request.Request(base + path, headers=_auth_headers())
    outcome: int | Exception | None = None
    for pause in (*PROBE_BACKOFF_S, None):
        try:
            with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_S, context=_tls()):
                return None
        except urllib.error.HTTPError as exc:  # before URLError, its base class
            outcome = exc.code
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            outcome = exc
        if pause is None or (isinstance(outcome, int) and outcome not in TRANSIENT_STATUS):
            break
        time.sleep(pause)
    if isinstance(outcome, Exception):
        raise TrackingServerUnreachable(
            f"MLflow tracking server {base} does not answer "
            f"({getattr(outcome, 'reason', outcome)}; tried {len(PROBE_BACKOFF_S) + 1} times); "
            f"start it (mlflow server ...) or fix MLFLOW_TRACKING_URI in {env_file}"
        ) from outcome
    return outcome


def _auth_headers() -> dict[str, str]:
    """The credentials MLflow itself would send (a token, else user and password)."""
    if token := os.environ.get("MLFLOW_TRACKING_TOKEN"):
        return {"Authorization": f"Bearer {token}"}
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if not (user or password):
        return {}
    return {
        "Authorization": "Basic "
        + base64.b64encode(f"{user or ''}:{password or ''}".encode()).decode()
    }


def _tls() -> ssl.SSLContext | None:
    """Honour MLflow's TLS variables: a custom CA bundle, or no verification at all."""
    if os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
        insecure = ssl.create_default_context()
        insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
        return insecure
    cert = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH")
    return ssl.create_default_context(cafile=cert) if cert else None
