"""The errors a trial config can raise before any training starts.

They live apart from :mod:`mixup_core.config` so that the data loaders can raise them too without
importing the config.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value or key is invalid; the message names the dotted key and the allowed range."""


class DataUnavailable(ConfigError):
    """The data a config names is not on this machine.

    The message is one line: the dotted key to change, the path that was looked at, and how to
    get the data there.
    """
