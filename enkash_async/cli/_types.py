"""The value parsers of the CLI's options (argparse ``type=``): one place for what a
number option accepts and what it says when it does not."""

from __future__ import annotations

import argparse
import math

__all__ = ["count", "fraction", "host", "page_size", "port", "positive", "rate", "seed"]


def _integer(text: str, low: int | None = None, high: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"from {low} to {high}"
        raise argparse.ArgumentTypeError(f"must be {bounds}, got {value}")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive(text: str) -> int:
    """A whole number of at least 1 (concurrency, workers, rows per chunk)."""
    return _integer(text, 1)


def count(text: str) -> int:
    """A whole number of at least 0 (how many customers, retries)."""
    return _integer(text, 0)


def seed(text: str) -> int:
    """Any whole number (a random seed)."""
    return _integer(text)


def page_size(text: str) -> int:
    """Customers per search page: 1 to 5000, EnKash's limit."""
    return _integer(text, 1, 5000)


def port(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535."""
    return _integer(text, 0, 65535)


def host(text: str) -> str:
    """An address to listen on: an IP address or a host name (no scheme, port or path)."""
    value = text.strip()
    if not value or any(c in value for c in "/ ") or value.count(":") == 1:
        raise argparse.ArgumentTypeError(
            f"must be an address such as 127.0.0.1 or 0.0.0.0, got {text!r}"
        )
    return value


def fraction(text: str) -> float:
    """A number from 0 to 1 (a share of requests)."""
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, got {text}")
    return value


def rate(text: str) -> float:
    """A number above 0 (requests per second)."""
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value
