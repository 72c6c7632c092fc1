"""Totals per campaign (or tag) and per link, every count split by classification.

Totals count events; unique counts count recipients (a message and recipient
pair), so a person who opens five times is five opens and one unique open.
``sent`` and ``delivered`` come from the recipients projection, and so do
``opened_by_person`` (recipients with a human open, a human click included,
after revision), ``fetched`` (recipients with any hit, machines included) and
``open_rate``: people who opened over delivered (over sent while no delivery
was reported). Machine and unknown opens never count in the open rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine, Select, and_, func, literal, select

from mailbeacon.core.events import Classification
from mailbeacon.store.schema import events, message_tags, messages, recipients

__all__ = ["StatsFilter", "StatsStore"]

_CLASSES = tuple(c.value for c in Classification)
GroupBy = Literal["campaign", "tag"]


@dataclass(frozen=True, slots=True)
class StatsFilter:
    campaign: str | None = None
    tag: str | None = None
    since: float | None = None  # message created at or after
    until: float | None = None  # message created before
    group_by: GroupBy = "campaign"


def _split() -> dict[str, int]:
    return dict.fromkeys((*_CLASSES, "all"), 0)


def _counts() -> dict[str, dict[str, int]]:
    return {"total": _split(), "unique": _split()}


def _group() -> dict[str, Any]:
    return {
        "sent": 0,
        "delivered": 0,
        "opened_by_person": 0,
        "fetched": 0,
        "opens": _counts(),
        "clicks": _counts(),
        "links": {},
    }


_RECIPIENT_COUNTS = ("sent", "delivered", "opened_by_person", "fetched")


class StatsStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def stats(self, account_id: str, where: StatsFilter) -> dict[str, Any]:
        groups: dict[str | None, dict[str, Any]] = {}
        totals = _group()
        key, kind, verdict, url = self._key(where), events.c.type, events.c.classification, events.c.url
        with self._engine.connect() as connection:

            def run(*by: Any, clicks_only: bool = False) -> Any:
                return connection.execute(self._engagement(account_id, where, by, clicks_only))

            for name, *numbers in connection.execute(self._recipient_query(account_id, where)):
                for target in (groups.setdefault(name, _group()), totals):
                    for field_name, number in zip(_RECIPIENT_COUNTS, numbers, strict=True):
                        target[field_name] += number
            for name, type_, cls, total, unique in run(key, kind, verdict):
                _add(groups.setdefault(name, _group())[_COUNT_OF[type_]], cls, total, unique)
            for name, type_, _total, unique in run(key, kind):
                groups[name][_COUNT_OF[type_]]["unique"]["all"] = unique
            for name, dest, cls, total, unique in run(key, url, verdict, clicks_only=True):
                _add(_link(groups[name], dest), cls, total, unique)
            for name, dest, _total, unique in run(key, url, clicks_only=True):
                _link(groups[name], dest)["unique"]["all"] = unique
            for type_, cls, total, unique in run(kind, verdict):
                _add(totals[_COUNT_OF[type_]], cls, total, unique)
            for type_, _total, unique in run(kind):
                totals[_COUNT_OF[type_]]["unique"]["all"] = unique
        return {
            "group_by": where.group_by,
            "groups": [
                _finish(where.group_by, name, group) for name, group in sorted(groups.items(), key=_order)
            ],
            "totals": _rate({k: v for k, v in totals.items() if k != "links"}),
        }

    def _scope(self, query: Select[Any], account_id: str, where: StatsFilter, message_id: Any) -> Select[Any]:
        query = query.join(messages, and_(messages.c.account_id == account_id, messages.c.id == message_id))
        if where.group_by == "tag" or where.tag is not None:
            query = query.join(
                message_tags,
                and_(message_tags.c.account_id == account_id, message_tags.c.message_id == message_id),
            )
        if where.tag is not None:
            query = query.where(message_tags.c.tag == where.tag)
        if where.campaign is not None:
            query = query.where(messages.c.campaign == where.campaign)
        if where.since is not None:
            query = query.where(messages.c.created_at >= where.since)
        if where.until is not None:
            query = query.where(messages.c.created_at < where.until)
        return query

    def _key(self, where: StatsFilter) -> Any:
        return message_tags.c.tag if where.group_by == "tag" else messages.c.campaign

    def _recipient_query(self, account_id: str, where: StatsFilter) -> Select[Any]:
        key = self._key(where)
        query = select(
            key,
            func.count(),
            func.count(recipients.c.delivered_at),
            func.count(recipients.c.first_human_open_at),
            func.count(recipients.c.first_fetched_at),
        ).select_from(recipients)
        query = self._scope(query, account_id, where, recipients.c.message_id)
        return query.where(recipients.c.account_id == account_id, recipients.c.sent_at.isnot(None)).group_by(
            key
        )

    def _engagement(
        self, account_id: str, where: StatsFilter, by: tuple[Any, ...], clicks_only: bool
    ) -> Select[Any]:
        who = events.c.message_id + literal("\x1f") + events.c.recipient
        query: Select[Any] = select(*by, func.count(), func.count(func.distinct(who))).select_from(events)
        query = self._scope(query, account_id, where, events.c.message_id)
        kinds = ("clicked",) if clicks_only else ("opened", "clicked")
        return query.where(events.c.account_id == account_id, events.c.type.in_(kinds)).group_by(*by)


_COUNT_OF = {"opened": "opens", "clicked": "clicks"}


def _link(group: dict[str, Any], url: str | None) -> dict[str, dict[str, int]]:
    entry = group["links"].setdefault(url, {"url": url, "clicks": _counts()})
    counts: dict[str, dict[str, int]] = entry["clicks"]
    return counts


def _add(counts: dict[str, dict[str, int]], verdict: str, total: int, unique: int) -> None:
    counts["total"][verdict] = counts["total"].get(verdict, 0) + total
    counts["total"]["all"] += total
    counts["unique"][verdict] = counts["unique"].get(verdict, 0) + unique


def _order(item: tuple[str | None, Any]) -> tuple[bool, str]:
    return (item[0] is None, item[0] or "")


def _finish(group_by: str, key: str | None, group: dict[str, Any]) -> dict[str, Any]:
    links: Iterable[dict[str, Any]] = group.pop("links").values()
    names = {"campaign": None, "tag": None, group_by: key}
    return _rate({**names, **group, "links": sorted(links, key=lambda entry: entry["url"] or "")})


def _rate(group: dict[str, Any]) -> dict[str, Any]:
    base = group["delivered"] or group["sent"]
    group["open_rate"] = round(group["opened_by_person"] / base, 4) if base else None
    return group
