"""Random secrets that are shown once and stored only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets


def new_secret() -> str:
    """A URL-safe random secret with 256 bits of entropy."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The stored form of a secret (SHA-256 hex): secrets are random, so a fast hash suffices."""
    return hashlib.sha256(secret.encode()).hexdigest()
