"""`python -m worker.cli`."""

import sys

from worker.cli.app import main

sys.exit(main())
