"""``MAILBEACON_PURE_PYTHON=1``: run the pure-Python reference instead of the compiled accelerator.

Imported first by ``mailbeacon/__init__.py``, before any ``core`` module (the core
reads no environment variable). A ``None`` entry in ``sys.modules`` makes the
import of ``mailbeacon.core._speedups`` raise ImportError, so ``core.html_scan``
falls back to ``pure_scan`` exactly as it does when the module was never built.
For tests and debugging: the results are the same, only slower.
"""

from __future__ import annotations

import os
import sys

ACCELERATOR = "mailbeacon.core._speedups"

if os.environ.get("MAILBEACON_PURE_PYTHON", "") not in ("", "0"):
    sys.modules.setdefault(ACCELERATOR, None)  # type: ignore[arg-type]
