"""The classifier: built once from data and settings, then one call per hit."""

from __future__ import annotations

from collections.abc import Sequence

from mailbeacon.core.classify.behaviour import revise
from mailbeacon.core.classify.config import ClassifierConfig, ClassifierData
from mailbeacon.core.classify.networks import NetworkTable
from mailbeacon.core.classify.rules import RULES, Assessment, HitView, weigh
from mailbeacon.core.classify.useragents import UserAgentInfo, UserAgents
from mailbeacon.core.events import RequestFacts, Verdict

__all__ = ["Classifier"]

_LINK_KINDS = frozenset({"click", "unsubscribe"})


class Classifier:
    """Human, machine or unknown for each hit, and for a message's hits taken together.

    ``classify`` is what the hit path calls (it fits the server's ``Classify`` seam, and
    so does the instance itself); ``revise`` re-reads a whole message when a later hit
    reveals something about the earlier ones. Neither raises on bad input.
    """

    __slots__ = ("_networks", "_user_agents", "config")

    def __init__(self, data: ClassifierData, config: ClassifierConfig | None = None) -> None:
        self.config = config or ClassifierConfig()
        self._user_agents = UserAgents(data.bots, memo_size=self.config.user_agent_memo)
        # The operator's networks come last, so an exact duplicate of a shipped block is theirs.
        self._networks = NetworkTable((*data.networks, *self.config.extra_networks))

    def classify(self, facts: RequestFacts) -> Verdict:
        return self.assess(facts).verdict

    __call__ = classify

    def assess(self, facts: RequestFacts) -> Assessment:
        """The verdict with how it was reached (what ``revise`` re-weighs)."""
        return weigh(self._view(facts, self._user_agents.read(facts.user_agent)), self.config, RULES)

    def assess_uncached(self, facts: RequestFacts) -> Assessment:
        """As ``assess`` without the user-agent memo: the cost of a never-seen user agent."""
        return weigh(self._view(facts, self._user_agents.read_uncached(facts.user_agent)), self.config, RULES)

    def revise(self, hits: Sequence[RequestFacts]) -> list[Verdict]:
        """Verdicts for one message's hits (any order; returned in input order)."""
        return revise(hits, [self.assess(h) for h in hits], self.config)

    def _view(self, facts: RequestFacts, ua: UserAgentInfo) -> HitView:
        start = facts.delivered_at if facts.delivered_at is not None else facts.sent_at
        age = facts.at - start if start is not None else None
        return HitView(facts, facts.kind in _LINK_KINDS, ua, self._networks.lookup(facts.ip), age)
