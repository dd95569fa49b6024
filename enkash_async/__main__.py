"""``python -m enkash_async``: the ``enkash-async`` command line."""

import sys

from enkash_async.cli import main

sys.exit(main())
