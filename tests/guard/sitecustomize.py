"""Installs the loopback guard in every Python process the tests start (on PYTHONPATH first)."""

import loopback_guard

loopback_guard.install()
