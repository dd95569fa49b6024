"""Where the client may send: the base URL's rules, checked once when a client is built.

A base URL is http(s) with a host a request can name; plain http only to loopback unless
the caller says the network is trusted (the token would travel unencrypted).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from enkash_async.errors import FieldError, ValidationError

__all__ = ["check_base_url"]


def check_base_url(base_url: str, *, allow_insecure_http: bool) -> str:
    """Normalise ``base_url``; refuse a user name or password in it (userinfo), and plain
    http to anything but loopback unless allowed.

    Raises :class:`ValidationError`.
    """
    parts = urlsplit(base_url)
    if "@" in parts.netloc:
        # A password there would be written wherever the URL goes (reprs, logs, the
        # checkpoint); aiohttp would also refuse it per request with a raw ValueError.
        raise ValidationError(
            [
                FieldError(
                    "base_url",
                    "must not hold a user name or password (user:pass@); give them as "
                    "credentials= or token=, never in the URL",
                )
            ]
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError([FieldError("base_url", f"must be an http(s) URL, got {base_url!r}")])
    if not _is_host_name(parts.hostname):
        raise ValidationError(
            [FieldError("base_url", f"{parts.hostname!r} is not a host name a request can use")]
        )
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        raise ValidationError(
            [
                FieldError(
                    "base_url",
                    "plain http would send the token unencrypted; use https, or pass "
                    "allow_insecure_http=True for a trusted network",
                )
            ]
        )
    return base_url.rstrip("/")


def _is_host_name(host: str) -> bool:
    # Checked when the client is built: aiohttp would raise a raw UnicodeError per request.
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        # NFKC maps characters such as "…" to dots, so check the labels after encoding.
        encoded = host.encode("idna").removesuffix(b".")
    except UnicodeError:
        return False
    labels = encoded.split(b".")
    return len(encoded) <= 253 and all(0 < len(label) <= 63 for label in labels)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
