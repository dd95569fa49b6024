"""The CLI's configuration: ENKASH_* variables, flags over the environment, refused logins, and
secrets never echoed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _cli import (
    Run,
    Start,
    listing,
    no_traceback,
    run,
    wire_row,
    write_jsonl,
)

from enkash_async.cli import main
from enkash_async.testing import FakeEnkash


async def test_a_refused_login_counts_refusals_and_warns_of_the_lock(
    cli: Run,
    server: FakeEnkash,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ENKASH_PASSWORD", "wrong")

    assert await run("customers", "search") == 1
    first = capsys.readouterr().err
    assert await run("customers", "search") == 1
    second = capsys.readouterr().err

    assert "refusal 1 seen" in first
    assert "refusal 2 seen" in second
    assert "locks an account after 3 refused logins, so 1 more and EnKash locks" in second
    assert "ENKASH_PASSWORD" in second


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        (
            {},
            [
                "ENKASH_BASE_URL",
                "ENKASH_CLIENT_ID",
                "ENKASH_CLIENT_SECRET",
                "ENKASH_USERNAME",
                "ENKASH_PASSWORD",
            ],
        ),
        (
            {
                "ENKASH_BASE_URL": "https://api.example.test",
                "ENKASH_CLIENT_ID": "c",
                "ENKASH_PASSWORD": "p",
            },
            ["ENKASH_CLIENT_SECRET", "ENKASH_USERNAME"],
        ),
        ({"ENKASH_TOKEN": "t"}, ["ENKASH_BASE_URL"]),
    ],
    ids=["nothing", "half-the-credentials", "token-without-url"],
)
def test_missing_configuration_names_the_variables_and_exits_2(
    given: dict[str, str],
    missing: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in given.items():
        monkeypatch.setenv(name, value)

    assert main(["customers", "search"]) == 2

    err = capsys.readouterr().err
    named = set(re.findall(r"ENKASH_[A-Z_]+(?=: )", err))
    assert named == set(missing)
    assert "ENKASH_TOKEN" in err or "ENKASH_TOKEN" in given
    assert no_traceback(err)


async def test_a_token_from_the_environment_is_used_without_logging_in(
    server: FakeEnkash, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENKASH_BASE_URL", server.url)
    monkeypatch.setenv("ENKASH_TOKEN", server.token)

    assert await run("customers", "search", "--max-items", "3") == 0

    assert len(capsys.readouterr().out.splitlines()) == 3
    assert server.stats.requests["token"] == 0


async def test_base_url_flag_overrides_the_environment(
    cli: Run,
    server: FakeEnkash,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ENKASH_BASE_URL", "http://127.0.0.1:9")  # nothing listens there

    assert await cli("customers", "search", "--base-url", server.url, "--max-items", "2") == 0

    assert len(capsys.readouterr().out.splitlines()) == 2


SECRET_PASSWORD = "pw-Zq81-never-print-me"
SECRET_TOKEN = "tok-Xv93-never-print-me"
SECRET_CLIENT = "cs-Lm55-never-print-me"


@pytest.mark.parametrize(
    ("scenario", "exit_code"),
    [
        ("success", 0),
        ("wrong-password", 1),
        ("wrong-client-secret", 1),
        ("bad-token", 1),
        ("half-set", 2),
    ],
)
async def test_secrets_from_the_environment_are_never_echoed(
    scenario: str,
    exit_code: int,
    start: Start,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from enkash_async.auth import PasswordCredentials

    credentials = PasswordCredentials(
        client_id="cli-test",
        client_secret=SECRET_CLIENT,
        username="ops@example.test",
        password=SECRET_PASSWORD,
    )
    server = await start(customers=5, credentials=credentials)
    env = {
        "ENKASH_BASE_URL": server.url,
        "ENKASH_CLIENT_ID": "cli-test",
        "ENKASH_CLIENT_SECRET": SECRET_CLIENT,
        "ENKASH_USERNAME": "ops@example.test",
        "ENKASH_PASSWORD": SECRET_PASSWORD,
    }
    if scenario == "wrong-password":
        env["ENKASH_PASSWORD"] = SECRET_PASSWORD + "-typo"
    elif scenario == "wrong-client-secret":
        env["ENKASH_CLIENT_SECRET"] = SECRET_CLIENT + "-typo"
    elif scenario == "bad-token":
        env = {"ENKASH_BASE_URL": server.url, "ENKASH_TOKEN": SECRET_TOKEN}
    elif scenario == "half-set":
        del env["ENKASH_USERNAME"]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    source = write_jsonl(tmp_path / "one.jsonl", [wire_row(1)])

    codes = [await run("customers", "search"), await run("customers", "import", str(source))]

    assert codes == [exit_code, exit_code]
    out, err = capfd.readouterr()
    files = b"".join((tmp_path / name).read_bytes() for name in listing(tmp_path))
    for secret in (SECRET_PASSWORD, SECRET_TOKEN, SECRET_CLIENT):
        assert secret not in out + err
        assert secret.encode() not in files
    assert no_traceback(err)
