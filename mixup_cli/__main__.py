"""``python -m mixup_cli`` is ``mixup-sweep``."""

import sys

from mixup_cli.main import main

sys.exit(main())
