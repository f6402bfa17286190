"""``python -m vccasync.cli``: the same as the ``vccasync`` command."""

from vccasync.cli import main

raise SystemExit(main())
