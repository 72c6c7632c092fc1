"""Sender accounts and their API keys (stored as SHA-256 hashes, shown once)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine, select

from mailbeacon.store.ids import hash_api_key, new_api_key, new_id
from mailbeacon.store.schema import accounts, api_keys

__all__ = ["Account", "AccountStore", "ApiKeyInfo", "DuplicateAccount"]


class DuplicateAccount(Exception):
    """An account with that name exists already."""


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    id: str
    account_id: str
    name: str
    hint: str
    created_at: float
    revoked_at: float | None


class AccountStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get_by_name(self, name: str) -> Account | None:
        with self._engine.connect() as connection:
            row = connection.execute(select(accounts).where(accounts.c.name == name)).first()
        return Account(row.id, row.name, row.created_at) if row else None

    def get(self, account_id: str) -> Account | None:
        with self._engine.connect() as connection:
            row = connection.execute(select(accounts).where(accounts.c.id == account_id)).first()
        return Account(row.id, row.name, row.created_at) if row else None

    def ensure(self, name: str) -> Account:
        """The account called ``name``, created if missing."""
        existing = self.get_by_name(name)
        if existing is not None:
            return existing
        try:
            return self.create(name)
        except DuplicateAccount:  # created by another process meanwhile
            found = self.get_by_name(name)
            assert found is not None
            return found

    def create(self, name: str) -> Account:
        account = Account(new_id()[:16], name, time.time())
        with self._engine.begin() as connection:
            if connection.execute(select(accounts.c.id).where(accounts.c.name == name)).first():
                raise DuplicateAccount(name)
            connection.execute(
                accounts.insert().values(id=account.id, name=name, created_at=account.created_at)
            )
        return account

    def create_api_key(self, account_id: str, name: str) -> tuple[str, ApiKeyInfo]:
        """A new key for ``account_id``: the key itself (shown once, never stored) and its record."""
        key = new_api_key()
        info = ApiKeyInfo(new_id(), account_id, name, key[:10], time.time(), None)
        with self._engine.begin() as connection:
            connection.execute(
                api_keys.insert().values(
                    id=info.id,
                    account_id=account_id,
                    name=name,
                    key_hash=hash_api_key(key),
                    hint=info.hint,
                    created_at=info.created_at,
                )
            )
        return key, info

    def authenticate(self, key: str) -> str | None:
        """The account id a bearer key belongs to, or None for an unknown or revoked key."""
        with self._engine.connect() as connection:
            row = connection.execute(
                select(api_keys.c.account_id).where(
                    api_keys.c.key_hash == hash_api_key(key), api_keys.c.revoked_at.is_(None)
                )
            ).first()
        return row.account_id if row else None

    def list_api_keys(self) -> list[tuple[Account, ApiKeyInfo]]:
        query = select(
            accounts.c.name.label("account_name"),
            accounts.c.created_at.label("account_created_at"),
            *api_keys.c,
        ).join(api_keys, api_keys.c.account_id == accounts.c.id)
        with self._engine.connect() as connection:
            rows = connection.execute(query.order_by(api_keys.c.created_at)).all()
        return [
            (
                Account(row.account_id, row.account_name, row.account_created_at),
                ApiKeyInfo(row.id, row.account_id, row.name, row.hint, row.created_at, row.revoked_at),
            )
            for row in rows
        ]

    def revoke_api_key(self, key_id: str) -> bool:
        with self._engine.begin() as connection:
            result = connection.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
        return bool(result.rowcount)

    def account_ids(self) -> set[str]:
        with self._engine.connect() as connection:
            return set(connection.execute(select(accounts.c.id)).scalars())
