"""Tests that no secret reaches the MLflow store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow", reason="mlflow not installed (dslc[tracking] extra)")
pytest.importorskip("filelock", reason="filelock not installed (dslc[tracking] extra)")

from tracking_support import run_data  # noqa: E402

from dslc import secrets, tracking  # noqa: E402


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("api_key", True),
        ("db.password", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("apiKey", True),
        ("APIKEY", True),
        ("hf_token", True),
        ("service-credentials", True),
        ("client_secret", True),
        ("keyboard", False),
        ("monkey", False),
        ("tokenizer", False),
        ("max_tokens", False),
        ("learning_rate", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert secrets.is_secret_name(name) is secret


def test_secrets_never_reach_the_store(tproj: Path) -> None:
    (tproj / ".env").write_text("API_TOKEN=s3cr3t\n", encoding="utf-8")
    with pytest.raises(ValueError), tracking.run(tags={"AWS_SECRET_ACCESS_KEY": "x"}) as run:
        run.log_params(
            {
                "api_key": "abc123",
                "db": {"password": "hunter22", "url": "postgres://u:s3cr3t@h/db"},
                "echo": "s3cr3t",
                "keyboard": "qwerty",
            }
        )
        run.set_tags({"note": "token is s3cr3t", "owner": "me"})
        raise ValueError("connection with s3cr3t refused")
    stored = run_data(run.id).data
    assert stored.params == {"keyboard": "qwerty"}
    assert stored.tags["owner"] == "me"
    withheld = set(stored.tags["dslc.withheld"].split(","))
    assert withheld == {"api_key", "db.password", "db.url", "echo", "AWS_SECRET_ACCESS_KEY", "note"}
    assert stored.tags["dslc.error"] == "ValueError: connection with *** refused"
    with sqlite3.connect(tproj / "mlflow.db") as db:
        dump = "\n".join(db.iterdump())
    for value in ("s3cr3t", "abc123", "hunter22"):
        assert value not in dump


def test_tracking_keeps_the_name_rule() -> None:
    assert tracking.is_secret_name is secrets.is_secret_name


def test_scrub_removes_env_values_and_url_credentials(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / ".env").write_text("SERVICE_TOKEN=from-dotenv-123\n", encoding="utf-8")
    monkeypatch.setenv("MY_API_KEY", "from-environ-456")
    text = (
        "got from-dotenv-123 and from-environ-456 at postgresql://bob:pa55@db:5432/x "
        "and https://tok@example.com/a"
    )
    assert secrets.scrub(text) == (
        "got *** and *** at postgresql://***@db:5432/x and https://***@example.com/a"
    )
