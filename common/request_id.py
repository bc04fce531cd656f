"""The X-Request-ID rule (SPEC §2), written once for the gateway's nginx map and the edge."""

from __future__ import annotations

import re
import uuid

# A safe token: at most 64 characters of [A-Za-z0-9._:-], starting with a letter or digit.
# Unanchored so nginx can wrap it in ^...$ and Python can fullmatch it (no "$" before "\n").
REQUEST_ID_TOKEN = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}"
MAX_REQUEST_ID_LENGTH = 64
_TOKEN = re.compile(REQUEST_ID_TOKEN)


def accept_request_id(value: str | None) -> str:
    """The client's id when it is a safe token, else a fresh uuid4."""
    if value and _TOKEN.fullmatch(value):
        return value
    return str(uuid.uuid4())
