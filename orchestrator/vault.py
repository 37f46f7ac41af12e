"""Encryption of the few secrets a workflow must hold (the PPPoE password until it is pushed).

Secrets travel as :class:`Secrets`, whose ``repr`` never shows a value, so a secret that
reaches a log line or an exception message by accident prints as ``<redacted>``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken

from orchestrator.config import get_settings
from orchestrator.errors import VaultError


class Secrets(Mapping[str, str]):
    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = dict(values or {})

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Secrets({', '.join(f'{k}=<redacted>' for k in self._values)})"

    __str__ = __repr__


def _fernet(key: str | None = None) -> Fernet:
    key = key or get_settings().secret_key
    if not key:
        raise VaultError(
            "ORCHESTRATOR_SECRET_KEY is not set; generate one with "
            "`orchestrator secret-key` and put it in the environment"
        )
    try:
        return Fernet(key.encode())
    except ValueError as exc:
        raise VaultError("ORCHESTRATOR_SECRET_KEY is not a valid Fernet key") from exc


def seal(secrets: Mapping[str, str], key: str | None = None) -> bytes:
    return _fernet(key).encrypt(json.dumps(dict(secrets)).encode())


def unseal(token: bytes | None, key: str | None = None) -> Secrets:
    if not token:
        return Secrets()
    try:
        return Secrets(json.loads(_fernet(key).decrypt(bytes(token))))
    except InvalidToken as exc:
        raise VaultError("stored secrets cannot be decrypted with this key") from exc


def generate_key() -> str:
    return Fernet.generate_key().decode()
