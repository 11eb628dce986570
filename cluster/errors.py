"""The cluster's one error: the CLI prints it on one line and exits with code 2."""

from __future__ import annotations


class ClusterError(RuntimeError):
    """A local cluster or tracking server could not be started, found or used; one line."""
