"""`python -m fastbp ...`: the command line of fastbp.cli."""
import sys

from .cli import main

sys.exit(main())
