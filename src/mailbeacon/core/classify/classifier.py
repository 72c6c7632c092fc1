"""The classifier: built once from data and settings, then one call per hit."""

from __future__ import annotations

from collections.abc import Sequence

from mailbeacon.core.classify.behaviour import revise
from mailbeacon.core.classify.config import ClassifierConfig, ClassifierData
from mailbeacon.core.classify.networks import NetworkMatch, NetworkTable
from mailbeacon.core.classify.rules import RULES, Assessment, HitView, weigh
from mailbeacon.core.classify.useragents import UserAgentInfo, UserAgents
from mailbeacon.core.events import RequestFacts, Verdict

__all__ = ["Classifier"]

_LINK_KINDS = frozenset({"click", "unsubscribe"})
_MEMO_HEADER_CHARS = 2048  # a browser sends ~500; past this a hit is weighed, not remembered
# (link-following, method, user agent, network, classifier headers, honeypot)
_Fingerprint = tuple[bool, str, str | None, NetworkMatch | None, tuple[tuple[str, str], ...], bool]


class Classifier:
    """Human, machine or unknown for each hit, and for a message's hits taken together.

    ``classify`` is what the hit path calls (it fits the server's ``Classify`` seam, and
    so does the instance itself); ``revise`` re-reads a whole message when a later hit
    reveals something about the earlier ones. Neither raises on bad input.
    """

    __slots__ = ("_memo", "_memo_size", "_network_of", "_networks", "_user_agents", "config")

    def __init__(self, data: ClassifierData, config: ClassifierConfig | None = None) -> None:
        self.config = config or ClassifierConfig()
        self._user_agents = UserAgents(data.bots, memo_size=self.config.user_agent_memo)
        # The operator's networks come last, so an exact duplicate of a shipped block is theirs.
        self._networks = NetworkTable((*data.networks, *self.config.extra_networks))
        self._memo: dict[_Fingerprint, Assessment] = {}
        self._memo_size = self.config.verdict_memo
        self._network_of: dict[str | None, NetworkMatch | None] = {}  # by address, as bounded

    def classify(self, facts: RequestFacts) -> Verdict:
        return self.assess(facts).verdict

    __call__ = classify

    def assess(self, facts: RequestFacts) -> Assessment:
        """The verdict with how it was reached (what ``revise`` re-weighs)."""
        network = self._network(facts.ip)
        if facts.sent_at is not None or facts.delivered_at is not None or not self._memo_size:
            return self._weigh(facts, network)
        # Without timing, the rules read nothing but this fingerprint (no rule reads the
        # time, the IP beyond its network, or the link), so equal fingerprints get equal
        # assessments. Real traffic repeats a few of them (mail proxies, scanners, one
        # browser build), so most hits skip the rules: ~1 µs instead of ~2.5. Large headers
        # are not remembered: they would let a caller fill the memory with unique keys.
        headers = facts.headers
        if sum(map(len, headers.values())) > _MEMO_HEADER_CHARS:
            return self._weigh(facts, network)
        key = (
            facts.kind in _LINK_KINDS,
            facts.method,
            facts.user_agent,
            network,
            tuple(headers.items()),
            facts.honeypot,
        )
        assessment = self._memo.get(key)
        if assessment is None:
            assessment = self._weigh(facts, network)
            if len(self._memo) >= self._memo_size:
                self._memo.clear()
            self._memo[key] = assessment
        return assessment

    def _network(self, ip: str | None) -> NetworkMatch | None:
        # Remembered by address with the verdicts: the proxies and scanners that send most
        # hits come from a few addresses, and parsing one and searching the table is ~0.9 µs.
        try:
            return self._network_of[ip]
        except KeyError:
            pass
        network = self._networks.lookup(ip)
        if self._memo_size:
            if len(self._network_of) >= self._memo_size:
                self._network_of.clear()
            self._network_of[ip] = network
        return network

    def _weigh(self, facts: RequestFacts, network: NetworkMatch | None) -> Assessment:
        return weigh(self._view(facts, self._user_agents.read(facts.user_agent), network), self.config, RULES)

    def assess_uncached(self, facts: RequestFacts) -> Assessment:
        """As ``assess`` without any memo: the cost of a never-seen hit (and what the memo
        tests hold ``assess`` to)."""
        ua = self._user_agents.read_uncached(facts.user_agent)
        return weigh(self._view(facts, ua, self._networks.lookup(facts.ip)), self.config, RULES)

    def revise(self, hits: Sequence[RequestFacts]) -> list[Verdict]:
        """Verdicts for one message's hits (any order; returned in input order)."""
        return revise(hits, [self.assess(h) for h in hits], self.config)

    def _view(self, facts: RequestFacts, ua: UserAgentInfo, network: NetworkMatch | None) -> HitView:
        start = facts.delivered_at if facts.delivered_at is not None else facts.sent_at
        age = facts.at - start if start is not None else None
        return HitView(facts, facts.kind in _LINK_KINDS, ua, network, age)
