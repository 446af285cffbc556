"""``python -m backtest`` runs the command line."""

import sys

from backtest.cli import main

sys.exit(main())
