"""A password is redacted in every form a URL carries it, and a sync target holds none."""

from __future__ import annotations

import pytest

from enkash_async import ValidationError
from enkash_async._urls import redact_url
from enkash_async.sync import SyncTarget


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://user:s3cret@host:6380/0", "redis://user:***@host:6380/0"),
        ("redis://:s3cret@host/0", "redis://:***@host/0"),
        ("redis://s3cret@host/0", "redis://***@host/0"),
        ("rediss://u:s3cr%40t@[::1]:6380", "rediss://u:***@[::1]:6380"),
        ("redis://host/0?password=s3cret&db=1", "redis://host/0?password=***&db=1"),
        ("http://alice:s3cret@enkash.example/api#s3cret", "http://alice:***@enkash.example/api"),
        ("redis://host:s3cret/0", "<unparseable URL>"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
)
def test_a_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "s3cr" not in redact_url(url)


def test_a_sync_target_refuses_a_base_url_with_userinfo() -> None:
    with pytest.raises(ValidationError, match="user name or password") as caught:
        SyncTarget.for_user("http://alice:s3cret@127.0.0.1:8080", "ops")
    assert "s3cret" not in str(caught.value) and "s3cret" not in repr(caught.value)
