"""Tests that no secret reaches the MLflow store, a log line or an error message.

The property-based tests (hypothesis) embed a secret in arbitrary text, with arbitrary
whitespace runs inside it and around it, at the truncation boundaries, and check what
would be sent.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest

mlflow = pytest.importorskip("mlflow", reason="mlflow not installed (dslc[tracking] extra)")
pytest.importorskip("filelock", reason="filelock not installed (dslc[tracking] extra)")

from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from tracking_support import run_data  # noqa: E402

from dslc import _events as events  # noqa: E402
from dslc import _secrets as secrets  # noqa: E402
from dslc import tracking  # noqa: E402
from dslc.tracking import _errors, _record, _run  # noqa: E402

# -- the name rule ---------------------------------------------------------------------

SECRET_NAMES = [
    "api_key", "db.password", "AWS_SECRET_ACCESS_KEY", "apiKey", "APIKEY", "hf_token",
    "service-credentials", "client_secret", "PGPASSWORD", "API_KEYS", "DATABASE_URL",
    "SQLALCHEMY_DATABASE_URI", "SENTRY_DSN", "dsn", "GPG_PASSPHRASE", "SLACK_WEBHOOK",
    "SLACK_WEBHOOK_URL", "DB_PWD", "MYSQL_PWD", "access_tokens", "authTokens", "REDIS_URL",
    "MONGO_URI", "connection_string", "GITHUB_PAT", "BASIC_AUTH", "SESSION_COOKIE",
    "sort.key", "private_key", "ssh-key", "Password", "my.secretValue",
]  # fmt: skip
PLAIN_NAMES = [
    "keyboard", "monkey", "tokenizer", "max_tokens", "num_keys", "learning_rate", "PWD",
    "OLDPWD", "homepage_url", "MLFLOW_TRACKING_URI", "n_estimators", "authors", "passes",
    "cookie_count", "", "__", "model.C",
]  # fmt: skip


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_names(name: str) -> None:
    assert secrets.is_secret_name(name)


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_plain_names(name: str) -> None:
    assert not secrets.is_secret_name(name)


def test_tracking_keeps_the_name_rule() -> None:
    assert tracking.is_secret_name is secrets.is_secret_name


# -- values ----------------------------------------------------------------------------


def test_secret_values_from_names_and_url_passwords(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "PGPASSWORD=from-dotenv\nWAREHOUSE_URL=postgresql://bob:p%40ss-word@db/sales\n"
        "SHORT_TOKEN=abc\nLEARNING_RATE=0.0001\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("API_KEYS", "  from-environ  ")
    values = secrets.secret_values(env_file)
    assert {"from-dotenv", "from-environ", "p%40ss-word", "p@ss-word"} <= values
    assert "0.0001" not in values and "postgresql://bob:p%40ss-word@db/sales" not in values
    redactor = secrets.Redactor(values)
    assert not redactor.leaks("abc")  # shorter than MIN_SECRET_LEN: ignored by value


def test_scrub_removes_env_values_and_url_credentials(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / ".env").write_text("SERVICE_TOKEN=from dotenv 123\n", encoding="utf-8")
    monkeypatch.setenv("MY_API_KEY", "from-environ-456")
    text = (
        "got from  dotenv\n123 and from-environ-456 at postgresql://bob:pa55@db:5432/x "
        "and https://tok@example.com/a, s3://b/k@v and ftp://u:p@ss@h/f"
    )
    assert secrets.scrub(text) == (
        "got *** and *** at postgresql://***@db:5432/x and https://***@example.com/a, "
        "s3://b/k@v and ftp://***@h/f"
    )


def test_tracking_errors_and_warnings_are_scrubbed(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (project / ".env").write_text("DB_PASSWORD=hunter2-hunter2\n", encoding="utf-8")
    error = tracking.TrackingError("cannot log to https://u:pw@host: hunter2-hunter2\n refused")
    assert str(error) == "cannot log to https://***@host: *** refused"
    cause = RuntimeError("x" * 290 + " hunter2-hunter2 and more\nsecond line")
    assert _errors.first_line(cause) == "x" * 290 + " *** and m"
    with caplog.at_level(logging.WARNING, logger="dslc.tracking"):
        _errors.warn("closing %s: %s", "run", "hunter2-hunter2")
    assert caplog.records[-1].getMessage() == "closing run: ***"


# -- properties ------------------------------------------------------------------------

_WHITESPACE = st.sampled_from([" ", "  ", "\t", "\n", " \n\t ", "\u00a0", "\u3000"])
# Secrets never contain "*" here: "***" is what replaces them.
_SECRET_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="*")


@st.composite
def secret_and_variant(draw: Any, alphabet: Any = _SECRET_CHARS) -> tuple[str, str]:
    """A secret (as an env value would be, stripped; whitespace runs inside allowed) and
    how it appears in some text: the same words with other whitespace runs between."""
    words = draw(st.lists(st.text(alphabet, min_size=1, max_size=12), min_size=1, max_size=4))
    words = [w for w in ("".join(w.split()) for w in words) if w]
    if len("".join(words)) < secrets.MIN_SECRET_LEN:
        words.append("s3cr3t")
    own, seen = (draw(st.lists(_WHITESPACE, min_size=len(words), max_size=len(words)))
                 for _ in range(2))  # fmt: skip
    secret = "".join(w + r for w, r in zip(words, own, strict=True)).strip()
    variant = "".join(w + r for w, r in zip(words, seen, strict=True)).strip()
    return secret, variant


def _folded(text: str) -> str:
    return " ".join(text.split())


@given(secret_and_variant(), st.text(), st.text())
def test_a_secret_never_survives_scrubbing(
    secret_variant: tuple[str, str], before: str, after: str
) -> None:
    secret, variant = secret_variant
    out = secrets.Redactor([secret]).scrub(before + variant + after)
    assert secret not in out
    assert _folded(secret) not in _folded(out)


_ALNUM = st.characters(whitelist_categories=("Lu", "Ll", "Nd"), max_codepoint=127)
_NO_ALNUM = st.characters(blacklist_categories=("Cs", "L", "N")).filter(lambda c: not c.isalnum())


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    secret_and_variant(_ALNUM),
    st.integers(min_value=_run.MAX_ERROR_LEN - 60, max_value=_run.MAX_ERROR_LEN + 5),
    st.text(_NO_ALNUM, max_size=30),
    st.text(_NO_ALNUM, max_size=30),
)
def test_the_error_tag_keeps_no_part_of_a_secret(
    secret_variant: tuple[str, str], pad: int, before: str, after: str
) -> None:
    """Around the truncation point, with whitespace runs: not even a prefix survives.

    The text around the secret has no letter or digit, so any letter or digit after the
    exception's type name would come from the secret.
    """
    secret, variant = secret_variant
    error = ValueError("-" * pad + before + variant + after)
    text = _run.error_text(error, secrets.Redactor([secret]))
    assert text.startswith("ValueError: ") and len(text) <= _run.MAX_ERROR_LEN
    assert not any(c.isalnum() for c in text[len("ValueError: ") :])


@settings(
    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    secret_and_variant(),
    st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=5),
    st.sampled_from(["param key", "param value", "tag key", "tag value"]),
    st.text(max_size=10),
)
def test_params_and_tags_never_send_a_secret(
    tproj: Path,
    monkeypatch: pytest.MonkeyPatch,
    secret_variant: tuple[str, str],
    others: dict[str, str],
    where: str,
    around: str,
) -> None:
    from mlflow.tracking import MlflowClient

    secret, variant = secret_variant
    assume("\x00" not in secret)  # an environment variable cannot hold it
    sent: list[str] = []

    def recording(self: Any, run_id: str, **entities: Any) -> None:  # what would be sent
        for entity in [*(entities.get("params") or []), *(entities.get("tags") or [])]:
            sent.extend([entity.key, entity.value])

    monkeypatch.setattr(MlflowClient, "log_batch", recording)
    monkeypatch.setenv("HYPOTHESIS_TOKEN", secret)
    embedded = around + variant + around
    params, tags = dict(others), dict(others)
    if where == "param key":
        params[embedded] = 1
    elif where == "param value":
        params["value"] = embedded
    elif where == "tag key":
        tags[embedded] = 1
    else:
        tags["value"] = embedded
    with tracking.run("run") as run:
        run.log_params(params)
        run.set_tags(tags)
    joined = "\x00".join(sent)  # fields apart: folding must not join two of them
    assert secret not in joined and _folded(secret) not in _folded(joined)
    assert "dslc.withheld" in sent  # the withheld tag says something was held back


@given(secret_and_variant(st.characters(whitelist_categories=("Lu", "Ll", "Nd"))))
def test_dataset_sources_never_carry_a_secret(secret_variant: tuple[str, str]) -> None:
    secret, _ = secret_variant
    token = secret.replace(" ", "")
    redactor = secrets.Redactor([token])
    for location in (
        f"https://bob:{token}@example.com/data/x.csv",
        f"s3://bucket/{token}/x.parquet",
        f"/data/raw/{token}.csv",
    ):
        record = _record.dataset_input(
            events.DatasetUse(None, location, None, "csv", "input"), redactor
        )
        entity = record.dataset
        shown = json.dumps([entity.name, entity.source, entity.profile])
        assert token not in shown
        assert "bob" not in shown


# -- the store, end to end -------------------------------------------------------------


def _everything_stored(root: Path) -> str:
    with sqlite3.connect(root / "mlflow.db") as db:
        dump = "\n".join(db.iterdump())
    files = [p.read_text(errors="replace") for p in root.joinpath("mlartifacts").rglob("*")
             if p.is_file()]  # fmt: skip
    return "\n".join([dump, *files])


def test_secrets_never_reach_the_store(tproj: Path) -> None:
    (tproj / ".env").write_text(
        "API_TOKEN=s3cr3t\nPGPASSWORD=pg pass  phrase\n"
        "WAREHOUSE_URL=postgresql://bob:wh-pass-77@db/sales\n",
        encoding="utf-8",
    )
    long_message = "x" * 980 + " pg pass\n phrase"  # the secret straddles the 1000 cut
    with pytest.raises(ValueError), tracking.run(tags={"AWS_SECRET_ACCESS_KEY": "x"}) as run:
        run.log_params(
            {
                "api_key": "abc123",
                "db": {"password": "hunter22", "url": "postgres://u:s3cr3t@h/db"},
                "echo": "s3cr3t",
                "keyboard": "qwerty",
                "s3cr3t-in-a-key": 1,
                "source": "https://reader:wh-pass-77@host/file.csv",
                "mirror": "https://anon:visible-only-in-url@host/x",
            }
        )
        run.set_tags({"note": "token is s3cr3t", "owner": "me", "PGPASSWORD": "pg pass phrase"})
        events.publish(
            events.DatasetUse("sales", "https://bob:wh-pass-77@host/s.csv", None, "csv", "input")
        )
        raise ValueError(long_message)
    stored = run_data(run.id).data
    assert stored.params == {"keyboard": "qwerty", "mirror": "https://***@host/x"}
    assert stored.tags["owner"] == "me"
    withheld = set(stored.tags["dslc.withheld"].split(","))
    assert withheld == {
        "api_key", "db.password", "db.url", "echo", "AWS_SECRET_ACCESS_KEY", "note",
        "***-in-a-key", "source", "PGPASSWORD",
    }  # fmt: skip
    error = stored.tags["dslc.error"]
    assert error.startswith("ValueError: xxx") and error.endswith("x ***")
    (dataset,) = run_data(run.id).inputs.dataset_inputs
    assert json.loads(dataset.dataset.source) == {"url": "https://***@host/s.csv"}
    everything = _everything_stored(tproj)
    for value in ("s3cr3t", "abc123", "hunter22", "wh-pass-77", "pg pass", "visible-only"):
        assert value not in everything
