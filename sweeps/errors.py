"""Errors the CLI turns into one line on stderr and exit code 2 (kept free of heavy imports)."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad command-line input or a missing sweep; printed on one line."""


class TrackingUnavailable(RuntimeError):
    """The MLflow tracking store cannot be reached; the message names the URI and the cause."""


class ClusterError(RuntimeError):
    """The local cluster could not be started or found; the message is one line."""
