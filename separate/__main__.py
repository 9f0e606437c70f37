"""``python -m separate``."""

import sys

from separate.cli import main

sys.exit(main())
