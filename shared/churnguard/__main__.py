"""``python -m churnguard`` runs the ``churn`` command line."""

import sys

from churnguard.entrypoints.cli import main

sys.exit(main())
