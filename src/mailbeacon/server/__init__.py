"""The tracking server: thin ASGI shells around the core and the store."""

from mailbeacon.server.app import MailbeaconApp, create_app

__all__ = ["MailbeaconApp", "create_app"]
