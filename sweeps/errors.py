"""Errors the CLI turns into one line on stderr and exit code 2 (kept free of heavy imports)."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad command-line input or a missing sweep; printed on one line."""


class TrackingUnavailable(RuntimeError):
    """The MLflow tracking store cannot be reached; the message names the URI and the cause."""


class SpecError(ValueError):
    """A sweep spec is unreadable or invalid; ``str()`` is ``"<file>: <key.path>: <problem>"``."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source, self.key, self.problem = source, key, problem
        text = ": ".join(part for part in (source, key, problem) if part)
        super().__init__("\\n".join(text.splitlines()))  # one line, even for odd keys

    def __reduce__(self) -> tuple[type[SpecError], tuple[str, str, str]]:
        return SpecError, (self.source, self.key, self.problem)  # survives pickling (Ray)
