"""The error roots of modeltap, raised by the sidecar and the analyzer alike.

ModeltapError
├── ConfigError      bad configuration; the process exits with status 2 before serving
├── StoreError       the object store failed an operation
│   └── StoreConfigError   the store is unusable as configured (start-up check)
├── RecordError      a capture record that cannot be parsed
└── RedactionError   a payload that redaction rules cannot read; its record is dropped
"""

from __future__ import annotations


class ModeltapError(Exception):
    """Base of every error modeltap raises on purpose."""


class ConfigError(ModeltapError):
    """A configuration value is missing, malformed or out of range; the message names it."""


class StoreError(ModeltapError):
    """An object-store operation failed.

    ``reason`` is a short fixed label for metrics (``throttled``, ``server_error``, ``connection``,
    ``timeout``, ``checksum``, ``client_error``, ``not_found``, ``io``); ``retryable`` says whether
    the same call may succeed later.
    """

    def __init__(self, message: str, *, reason: str = "io", retryable: bool = True) -> None:
        super().__init__(message)
        self.reason = reason
        self.retryable = retryable


class StoreConfigError(StoreError):
    """The store cannot be used as configured: unknown bucket, wrong credentials, bad URI."""

    def __init__(self, message: str, *, reason: str = "config") -> None:
        super().__init__(message, reason=reason, retryable=False)


class RecordError(ModeltapError):
    """A capture record is malformed."""


class RedactionError(ModeltapError):
    """A payload cannot be parsed for redaction, so its record must not be written."""
