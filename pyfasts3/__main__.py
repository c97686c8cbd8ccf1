"""``python -m pyfasts3``: the command line (see pyfasts3.cli)."""
import sys

from .cli import main

sys.exit(main())
