"""The ``ENKASH_*`` variables that point ``EnkashClient.from_env()`` at a fake EnKash."""

from __future__ import annotations

from enkash_async.testing import FakeEnkash


def login_environment(server: FakeEnkash) -> dict[str, str]:
    """``ENKASH_BASE_URL`` and the four login variables for a started ``server``."""
    credentials = server.credentials
    return {
        "ENKASH_BASE_URL": server.url,
        "ENKASH_CLIENT_ID": credentials.client_id,
        "ENKASH_CLIENT_SECRET": credentials.client_secret,
        "ENKASH_USERNAME": credentials.username,
        "ENKASH_PASSWORD": credentials.password,
    }
