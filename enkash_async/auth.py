"""The public credentials type for a password login (``EnkashClient(credentials=...)``).

Getting and renewing tokens is ``_auth``'s job. Secrets are kept out of every repr, so
a credentials object can be logged safely.
"""

from __future__ import annotations

import attrs

__all__ = ["PasswordCredentials"]


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
