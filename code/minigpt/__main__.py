"""`python -m minigpt ...`: the `minigpt` command line (minigpt.cli)."""

import sys

from .cli import main

sys.exit(main())
