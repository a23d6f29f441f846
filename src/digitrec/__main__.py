"""`python -m digitrec` (and so `torchrun -m digitrec`) runs the CLI."""

import sys

from digitrec.cli import main

sys.exit(main())
