"""Compatibility with pytracking2 0.4.6: mailbeacon.pytracking against the real thing."""
