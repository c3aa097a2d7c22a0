"""``python -m polygram.cli``."""

import sys

from polygram.cli import main

sys.exit(main())
