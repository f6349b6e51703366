"""The one scrubbing function: no credential of any URL shape survives it, on any text.

Secrets here are drawn from an alphabet the rest of the text never uses (upper case and
digits, after a "Q"), so "not in the output" is exact; a second property checks arbitrary
passwords structurally, by parsing the scrubbed URL back.
"""

from __future__ import annotations

import string
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dslc._secrets import REDACTED, is_secret_name, scrub

LOWER = string.ascii_lowercase + string.digits
secrets = st.text(alphabet=string.ascii_uppercase + string.digits, min_size=1, max_size=20).map(
    lambda s: "Q" + s
)
words = st.text(alphabet=LOWER, min_size=1, max_size=10)
schemes = st.sampled_from(
    ["https", "http", "postgresql", "postgresql+psycopg", "mysql+pymysql", "s3", "sqlite", "ftp"]
)
SECRET_PARAMS = ["password", "sslpassword", "token", "access_token", "api_key", "apikey",
                 "client_secret", "sig_secret", "auth_token", "passwd",
                 "X-Amz-Credential"]  # fmt: skip
PLAIN_PARAMS = ["sslmode", "x", "region", "timeout", "page", "application_name"]
contexts = st.sampled_from(
    ["{}", "error: cannot reach {}: refused", "'{}'", '"{}"', "url={} next", "({})", "{}\n{}"]
)


@st.composite
def urls(draw) -> tuple[str, list[str], list[tuple[str, str]]]:
    """A URL with credentials in its user part and its query; its secrets; its plain pairs."""
    hidden: list[str] = []
    user = draw(st.one_of(st.none(), words))
    userinfo = ""
    if user is not None:
        password = draw(st.one_of(st.none(), secrets))
        if password is not None:
            hidden.append(password)
            userinfo = f"{user}:{password}@"
        else:
            userinfo = f"{user}@"
    host = draw(words) + ".example"
    port = draw(st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}")))
    path = "/" + "/".join(draw(st.lists(words, max_size=3)))
    pairs, plain = [], []
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            value = draw(secrets)
            hidden.append(value)
            pairs.append((draw(st.sampled_from(SECRET_PARAMS)), value))
        else:
            pair = (draw(st.sampled_from(PLAIN_PARAMS)), draw(words))
            plain.append(pair)
            pairs.append(pair)
    query = ("?" + "&".join(f"{k}={v}" for k, v in pairs)) if pairs else ""
    return f"{draw(schemes)}://{userinfo}{host}{port}{path}{query}", hidden, plain


@given(urls(), contexts)
def test_no_credential_of_a_url_survives(url_parts, context) -> None:
    url, hidden, plain = url_parts
    text = context.format(url, url)
    cleaned = scrub(text)
    for secret in hidden:
        assert secret not in cleaned, (text, cleaned)
    for name, value in plain:  # what is not secret stays readable
        assert f"{name}={value}" in cleaned, (text, cleaned)
    assert urlsplit(url).hostname in cleaned


@given(
    st.text(min_size=1, max_size=30).filter(lambda s: s.strip() == s and "\n" not in s),
    st.sampled_from(SECRET_PARAMS),
)
def test_any_password_is_removed_structurally(password: str, param: str) -> None:
    encoded = quote(password, safe="")
    url = f"postgresql://bob:{encoded}@db.example:5432/sales?{param}={encoded}&sslmode=require"
    cleaned = scrub(f"cannot connect to {url}")
    found = urlsplit(cleaned.split(" ")[-1])
    assert found.password in (None, REDACTED) and found.hostname == "db.example"
    assert found.port == 5432 and found.path == "/sales"
    assert dict(parse_qsl(found.query)) == {param: REDACTED, "sslmode": "require"}


@pytest.mark.parametrize("password", ["p", "po", "ort", "host"])
def test_a_short_password_does_not_eat_other_words(monkeypatch, password: str) -> None:
    monkeypatch.setenv("WAREHOUSE_URL", f"postgresql://bob:{password}@db.example/sales")
    cleaned = scrub(f"host and port of postgresql://bob:{password}@db.example/sales are wrong")
    assert cleaned == "host and port of postgresql://***@db.example/sales are wrong"


def test_secret_query_names_follow_the_name_rule() -> None:
    assert all(is_secret_name(name) for name in SECRET_PARAMS)
    assert not any(is_secret_name(name) for name in PLAIN_PARAMS)
