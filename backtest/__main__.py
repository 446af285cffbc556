"""``python -m backtest`` runs the command line."""

import sys

from backtest.cli.main import main

sys.exit(main())
