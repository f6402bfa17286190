"""A dlt source of the Interaction Content API (``pip install "vccasync[dlt]"``; docs/dlt.md).

Importing this package turns dlt's anonymous telemetry off unless
``RUNTIME__DLTHUB_TELEMETRY`` is already set (set it to ``true`` to send it): a loader of
contact-centre data talks to the API and to its destination, nothing else.
"""

import os

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

from ._rows import INTERACTION_COLUMNS, MANIFEST_COLUMNS  # after the telemetry default
from ._source import LOOKBACK, REMOVALS, vcc_source

__all__ = ["INTERACTION_COLUMNS", "LOOKBACK", "MANIFEST_COLUMNS", "REMOVALS", "vcc_source"]
