"""mailbeacon: what happened to a message after it left.

Sign tracking links, rewrite HTML and MIME messages byte-exactly, decode hits.
See README.md for the five-minute tour and docs/ for each concept.
"""

import mailbeacon._pure  # noqa: F401  - first: MAILBEACON_PURE_PYTHON must act before core loads
from mailbeacon.config import Settings
from mailbeacon.core.errors import (
    BadSignature,
    ConfigError,
    InvalidDestination,
    KeyConfigError,
    MailbeaconError,
    MalformedToken,
    PayloadTooLarge,
    TokenError,
    TokenExpired,
    UnknownKey,
)
from mailbeacon.core.html import PixelPosition, RewriteResult, TrackedLink
from mailbeacon.core.keys import Key, KeyRing
from mailbeacon.core.tokens import Hit, HitKind
from mailbeacon.tracker import GmailClipWarning, Tracker

__version__ = "0.1.0.dev0"

__all__ = [
    "BadSignature",
    "ConfigError",
    "GmailClipWarning",
    "Hit",
    "HitKind",
    "InvalidDestination",
    "Key",
    "KeyConfigError",
    "KeyRing",
    "MailbeaconError",
    "MalformedToken",
    "PayloadTooLarge",
    "PixelPosition",
    "RewriteResult",
    "Settings",
    "TokenError",
    "TokenExpired",
    "TrackedLink",
    "Tracker",
    "UnknownKey",
    "__version__",
]
