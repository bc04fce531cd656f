"""The one email normalisation policy: the key under which an email is unique (SPEC §1)."""

from __future__ import annotations

import unicodedata

import idna


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def domain_key(domain: str) -> str:
    """UTS 46 mapping (which also maps `。` to `.` and lower-cases), no trailing dot, then
    IDNA 2008 A-labels: `straße.de` stays distinct from `strasse.de`, as IDNA 2008 says."""
    nfkc = unicodedata.normalize("NFKC", domain)
    try:
        mapped = idna.uts46_remap(nfkc, std3_rules=False, transitional=False).rstrip(".")
        return idna.encode(mapped, uts46=False).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        # Not a valid IDN (`_` in a label, say): the folded form still compares equal forms.
        return _fold(nfkc.replace("\u3002", ".")).rstrip(".")


def email_key(email: str) -> str:
    """Two emails are the same address exactly when their keys are equal."""
    local, _, domain = email.rpartition("@")
    return f"{_fold(local)}@{domain_key(domain)}"
