"""``python -m perf2score`` runs the command-line interface."""

import sys

from perf2score.cli import main

sys.exit(main())
