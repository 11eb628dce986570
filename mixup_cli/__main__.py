"""``python -m mixup_cli`` is ``mixup-sweep``."""

from mixup_cli.main import entry

entry()
