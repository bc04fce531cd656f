"""Kong consumers rendered from the credentials store (common/auth/store.py), never the repo.

Every consumer gets a stable id (uuid5 of its name) so Kong and the local gateway send the
same `X-Consumer-ID`; API-key credentials keep the store's key ids (`X-Credential-Identifier`).
"""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

from common.auth.acl import GROUPS
from common.auth.store import ANONYMOUS, END_USERS, CredentialStore
from kong.problems import problem_body

_NAMESPACE = uuid.UUID("6f1c9a52-3a4e-4c1e-9a57-1d0f6f0b5e21")  # this project's, fixed forever
KEY_REALM = "kong"
# What every failed authentication answers (the anonymous consumer's response headers).
WWW_AUTHENTICATE = f'Key realm="{KEY_REALM}"'
UNAUTHORIZED_DETAIL = "Unauthorized"


def consumer_id(username: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, username))


def anonymous_consumer() -> dict[str, Any]:
    """Kong's "multiple authentication" placeholder: no groups, so acl refuses it (401), and
    request-termination refuses it on any route without acl; both carry WWW-Authenticate."""
    body = problem_body(401, UNAUTHORIZED_DETAIL, request_id=None)
    return {
        "username": ANONYMOUS,
        "id": consumer_id(ANONYMOUS),
        "plugins": [
            {
                "name": "request-termination",
                "config": {
                    "status_code": 401,
                    "content_type": "application/problem+json",
                    "body": json.dumps(body, separators=(",", ":")),
                },
            },
            {
                "name": "response-transformer",
                "config": {"add": {"headers": [f"WWW-Authenticate:{WWW_AUTHENTICATE}"]}},
            },
        ],
    }


def rate_limiting(limits: dict[str, int]) -> dict[str, Any]:
    """A consumer's own limit; it replaces the global per-IP one for that consumer (Kong picks
    the most specific plugin instance)."""
    config = {**limits, "policy": "local", "limit_by": "consumer"}
    return {"name": "rate-limiting", "config": config}


def render_consumers(store: CredentialStore) -> list[dict[str, Any]]:
    """The `consumers:` section: anonymous, every API-key consumer, the issuers' consumers."""
    consumers = [anonymous_consumer()]
    for name, consumer in sorted(store.consumers.items()):
        entry: dict[str, Any] = {
            "username": name,
            "id": consumer_id(name),
            "keyauth_credentials": [{"id": k.id, "key": k.key} for k in consumer.keys],
            "acls": [{"group": group} for group in consumer.groups],
        }
        if consumer.limits:
            entry["plugins"] = [rate_limiting(dict(consumer.limits))]
        consumers.append(entry)
    # An issuer's consumer holds one jwt_secret per issuer whose `iss` names it.
    issuer_consumers: dict[str, list[dict[str, Any]]] = {END_USERS: []}
    for iss, issuer in sorted(store.issuers.items()):
        secret = {
            "key": iss,
            "algorithm": issuer.algorithm,
            "rsa_public_key": issuer.rsa_public_key,
            # Unused by RS256, but decK's schema requires one; random, so it never signs anything.
            "secret": secrets.token_urlsafe(32),
        }
        issuer_consumers.setdefault(issuer.consumer, []).append(secret)
    for name, jwt_secrets in sorted(issuer_consumers.items()):
        consumers.append(
            {
                "username": name,
                "id": consumer_id(name),
                "jwt_secrets": jwt_secrets,
                # Every group: the edge narrows an end user to their own data (SPEC §7).
                "acls": [{"group": group} for group in GROUPS],
            }
        )
    return consumers
