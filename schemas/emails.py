"""The one email normalisation policy: the key under which an email is unique (SPEC §1)."""

from __future__ import annotations

import unicodedata

import idna


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def domain_key(domain: str) -> str:
    """NFKC + case-fold, no trailing dot, IDNA (A-label) form where the name allows it."""
    folded = _fold(domain).rstrip(".")
    try:
        return idna.encode(folded, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        # Not a valid IDN (`_` in a label, say): the folded form still compares equal forms.
        return folded


def email_key(email: str) -> str:
    """Two emails are the same address exactly when their keys are equal."""
    local, _, domain = email.rpartition("@")
    return f"{_fold(local)}@{domain_key(domain)}"
