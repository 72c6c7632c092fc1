"""The tracking server: thin ASGI shells around the core and the store.

``create_app`` is imported on first use: ``mailbeacon serve``'s supervisor process imports
``server.runtime`` only, and stays small without FastAPI (docs/server.md, "Processes").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailbeacon.server.app import MailbeaconApp, create_app

__all__ = ["MailbeaconApp", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mailbeacon.server import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
