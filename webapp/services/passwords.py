"""Password policy and hashing (argon2id)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

from webapp.services import ServiceError

MIN_LENGTH = 12
MAX_LENGTH = 128
COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt"


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of the 10,000 most common breached passwords."""
    return frozenset(
        line.strip()
        for line in COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
        if line.strip()
    )


def check_policy(password: str) -> None:
    """Refuse passwords that are too short, too long or known to attackers (NIST 800-63B style)."""
    if len(password) < MIN_LENGTH:
        raise ServiceError(f"Use at least {MIN_LENGTH} characters (a few words make a good one).", "password")
    if len(password) > MAX_LENGTH:
        raise ServiceError(f"Use at most {MAX_LENGTH} characters.", "password")
    if password.lower() in common_passwords():
        raise ServiceError(
            "This password is among the most common breached passwords; choose another.", "password"
        )


def _hasher() -> PasswordHasher:
    config = current_app.config
    return PasswordHasher(
        time_cost=config["ARGON2_TIME_COST"], memory_cost=config["ARGON2_MEMORY_COST_KIB"], parallelism=1
    )


def hash_password(password: str) -> str:
    """An argon2id hash of the whole password (no truncation)."""
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when the password matches the hash."""
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than the configured ones (older or stronger)."""
    try:
        return _hasher().check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@lru_cache(maxsize=4)
def _dummy_hash(time_cost: int, memory_cost: int) -> str:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=1).hash("not a password")


def burn_verification_time(password: str) -> None:
    """Spend what a real verification costs, so an unknown email answers as slowly as a known one."""
    config = current_app.config
    verify_password(_dummy_hash(config["ARGON2_TIME_COST"], config["ARGON2_MEMORY_COST_KIB"]), password)
