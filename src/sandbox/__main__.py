"""``python -m sandbox``: the same as ``bant-sync sandbox``."""

import sys

from sandbox.cli import main

sys.exit(main())
