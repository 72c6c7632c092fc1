"""Human, machine or unknown: classify every open and click, and say why. No I/O here.

    rules.py       the ordered per-hit rules and how their findings are weighed
    useragents.py  client families, a plain-browser fast path, crawler-user-agents patterns
    networks.py    published networks by address (bisect), scoped to opens and clicks
    behaviour.py   what a message's hits reveal together (bursts, honeypot, click before open)
    client_ip.py   the client address behind trusted proxies
    classifier.py  ``Classifier``: built once from ``ClassifierData`` and ``ClassifierConfig``

The data (bot patterns, networks) is read by the caller, ``mailbeacon.classify_data``.
docs/classification.md lists every reason and where each rule comes from.
"""

from mailbeacon.core.classify.classifier import Classifier
from mailbeacon.core.classify.client_ip import TrustedProxies, client_ip
from mailbeacon.core.classify.config import ClassifierConfig, ClassifierData
from mailbeacon.core.classify.networks import NetworkEntry, NetworkMatch, NetworkTable, Scope
from mailbeacon.core.classify.rules import Assessment
from mailbeacon.core.classify.useragents import BotPatterns

__all__ = [
    "Assessment",
    "BotPatterns",
    "Classifier",
    "ClassifierConfig",
    "ClassifierData",
    "NetworkEntry",
    "NetworkMatch",
    "NetworkTable",
    "Scope",
    "TrustedProxies",
    "client_ip",
]
