"""``python -m nnjax ...``: the ``nnjax`` command line (:mod:`nnjax.cli`)."""

import sys

from nnjax.cli import main

if __name__ == "__main__":
    sys.exit(main())
