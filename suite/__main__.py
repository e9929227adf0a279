"""``python -m suite`` is the ``targetbench`` command."""
import sys

from suite.cli import main

sys.exit(main())
