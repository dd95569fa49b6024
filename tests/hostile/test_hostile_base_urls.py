"""A base URL carrying a user name or password (userinfo) is refused when the client is
built, and the password appears in no message, repr or persisted target."""

from __future__ import annotations

import pytest

from enkash_async import EnkashClient, ValidationError

SECRET = "S3cr3tPass"


@pytest.mark.parametrize(
    "url",
    [
        f"http://alice:{SECRET}@127.0.0.1:8080",
        f"https://alice:{SECRET}@api.enkash.test/",
        f"https://{SECRET}@api.enkash.test",
        f"ftp://alice:{SECRET}@api.enkash.test",
    ],
)
def test_a_base_url_with_userinfo_is_a_validation_error_without_the_password(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        EnkashClient(url, token="t")
    assert caught.value.fields == ("base_url",)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)


def test_from_env_refuses_a_base_url_with_userinfo_without_the_password() -> None:
    environ = {"ENKASH_BASE_URL": f"https://alice:{SECRET}@api.enkash.test", "ENKASH_TOKEN": "t"}
    with pytest.raises(ValidationError, match="user name or password") as caught:
        EnkashClient.from_env(environ)
    assert SECRET not in str(caught.value)
