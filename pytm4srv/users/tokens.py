"""API tokens: how they are made and what is stored of them."""

from __future__ import annotations

import hashlib
import secrets


def new_token() -> str:
    """A fresh random API token (256 bits)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """What is stored for a token: its SHA-256, hex. Tokens are random, so no salt is needed."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
