"""``python -m pyro_ar`` runs the ``pyro-ar`` command."""

import sys

from .cli import main

sys.exit(main())
