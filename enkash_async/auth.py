"""Credentials for EnKash: a static bearer token or a password login.

Secrets are kept out of every repr, so a credentials object can be logged safely.
"""

from __future__ import annotations

import attrs

__all__ = ["BearerToken", "PasswordCredentials"]


def _hidden(value: object) -> str:
    return "'***'"


@attrs.frozen
class PasswordCredentials:
    """What ``POST /oauth/token`` needs for the password grant.

    ``client_id``/``client_secret`` go in the Basic ``Authorization`` header; ``username``,
    ``password`` and ``client_id`` in the form body.
    """

    client_id: str
    client_secret: str = attrs.field(repr=_hidden)
    username: str
    password: str = attrs.field(repr=_hidden)


@attrs.frozen
class BearerToken:
    """A ready access token, sent as ``Authorization: Bearer <token>``."""

    token: str = attrs.field(repr=_hidden)
