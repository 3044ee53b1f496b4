"""Errors raised by the sidecar and shared with the analyzer.

    ModeltapError
    ├── ConfigError      bad configuration; the process exits with status 2 before serving
    ├── StoreError       the object store failed an operation
    │   └── StoreConfigError   the store is unusable as configured (start-up check)
    └── RecordError      a capture record that cannot be parsed
"""

from __future__ import annotations


class ModeltapError(Exception):
    """Base of every error modeltap raises on purpose."""


class ConfigError(ModeltapError):
    """A configuration value is missing, malformed or out of range; the message names it."""


class StoreError(ModeltapError):
    """An object-store operation failed (it may succeed when retried)."""


class StoreConfigError(StoreError):
    """The store cannot be used as configured: unknown bucket, wrong credentials, bad URI."""


class RecordError(ModeltapError):
    """A capture record is malformed."""
