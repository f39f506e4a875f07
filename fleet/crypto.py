"""Encryption at rest for SolaX tokens: MultiFernet over settings.TOKEN_ENCRYPTION_KEYS.

The first key encrypts; every key decrypts, so keys rotate by prepending a new one and running
`manage.py rotate_token_keys`.
"""

from __future__ import annotations

import hashlib
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.TOKEN_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    """Return the ciphertext of `plaintext` under the primary key."""
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    """Return the plaintext; raise ValueError (without the ciphertext) if no key opens it."""
    try:
        return fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise ValueError("the stored token cannot be decrypted with TOKEN_ENCRYPTION_KEYS") from None


def rotate(ciphertext: str) -> str:
    """Return `ciphertext` re-encrypted under the primary key."""
    return fernet().rotate(ciphertext.encode()).decode()


def secret_hash(secret: str) -> str:
    """Return the SHA-256 of a random secret, hex: the form in which it is stored for lookups. The
    secrets hashed here are 192 random bits, so the hash cannot be reversed by guessing, and it needs
    no key that could leak or have to rotate."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
