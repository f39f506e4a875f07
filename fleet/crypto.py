"""Encryption at rest for SolaX tokens: MultiFernet over settings.TOKEN_ENCRYPTION_KEYS.

The first key encrypts; every key decrypts, so keys rotate by prepending a new one and running
`manage.py rotate_token_keys`.

Beside its ciphertext each token keeps a keyed digest (HMAC-SHA256), so that a second account with
the same token can be refused without decrypting every stored token. Its key is derived (HKDF) from
the primary token key rather than from SECRET_KEY: a digest lets whoever holds its key test guesses
of a token, so it deserves the same secret as the ciphertext; it rotates with that key (the rotate
command re-computes the digests); and SECRET_KEY changes for reasons of its own (sessions, signing)
that must not silently stop two accounts from matching.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

DIGEST_INFO = b"solax-fleet token digest v1"


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


def can_decrypt(ciphertext: str) -> bool:
    """Return True when one of TOKEN_ENCRYPTION_KEYS opens `ciphertext`."""
    try:
        decrypt(ciphertext)
    except ValueError:
        return False
    return True


def rotate(ciphertext: str) -> str:
    """Return `ciphertext` re-encrypted under the primary key."""
    return fernet().rotate(ciphertext.encode()).decode()


@cache
def _digest_key(key: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=DIGEST_INFO).derive(
        base64.urlsafe_b64decode(key.encode()))


def token_digest(token: str, key: str | None = None) -> str:
    """Return the hex HMAC-SHA256 of `token` under a key derived from `key` (default: the primary
    token key)."""
    secret = _digest_key(key or settings.TOKEN_ENCRYPTION_KEYS[0])
    return hmac.new(secret, token.encode(), hashlib.sha256).hexdigest()


def token_digests(token: str) -> list[str]:
    """Return the digests of `token` under every key: during a rotation, before the rotate command
    has run, a stored digest may still be under an older key."""
    return [token_digest(token, key) for key in settings.TOKEN_ENCRYPTION_KEYS]


def secret_hash(secret: str) -> str:
    """Return the SHA-256 of a random secret, hex: the form in which it is stored for lookups. The
    secrets hashed here are 192 random bits, so the hash cannot be reversed by guessing, and it needs
    no key that could leak or have to rotate."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
