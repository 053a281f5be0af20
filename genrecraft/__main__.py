"""python -m genrecraft: the genrecraft command (see genrecraft.cli)."""

import sys

from .cli import main

sys.exit(main())
