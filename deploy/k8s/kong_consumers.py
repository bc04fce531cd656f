"""Kong Ingress Controller consumers from the credentials store: `kubectl apply -f -` input.

`.venv/bin/python deploy/k8s/kong_consumers.py [STORE] | kubectl apply -n micro -f -`
(STORE default: $AUTH_CREDENTIALS_FILE or .run/auth/credentials.json). Prints Secrets with
API keys: pipe it, never write it into the repo. The same consumers kong-render puts into
kong.yml (kong/consumers.py), except `anonymous`, which the base declares.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from common.auth.store import ANONYMOUS, load_store, store_path
from kong.consumers import render_consumers

CREDENTIAL_LABEL = "konghq.com/credential"


def secret(name: str, kind: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "labels": {CREDENTIAL_LABEL: kind}},
        "type": "Opaque",
        "stringData": data,
    }


def k8s_name(*parts: str) -> str:
    # Group names hold ':' and consumer names may hold '_': neither is valid in a name.
    return "-".join(parts).replace(":", "-").replace("_", "-").lower()


def consumer_resources(consumer: dict[str, Any]) -> list[dict[str, Any]]:
    """One KongConsumer, its credential Secrets and its own rate-limiting KongPlugin."""
    name = consumer["username"]
    docs = [
        secret(k8s_name(name, "key", key["id"]), "key-auth", {"key": key["key"]})
        for key in consumer.get("keyauth_credentials", [])
    ]
    docs += [
        secret(
            k8s_name(name, "jwt", jwt["key"]),
            "jwt",
            {k: jwt[k] for k in ("key", "algorithm", "rsa_public_key", "secret")},
        )
        for jwt in consumer.get("jwt_secrets", [])
    ]
    docs += [
        secret(k8s_name(name, "acl", acl["group"]), "acl", {"group": acl["group"]})
        for acl in consumer.get("acls", [])
    ]
    metadata: dict[str, Any] = {
        "name": k8s_name(name),
        "annotations": {"kubernetes.io/ingress.class": "kong"},
    }
    for index, plugin in enumerate(consumer.get("plugins", [])):
        plugin_name = k8s_name(name, plugin["name"], str(index))
        docs.append(
            {
                "apiVersion": "configuration.konghq.com/v1",
                "kind": "KongPlugin",
                "metadata": {"name": plugin_name},
                "plugin": plugin["name"],
                "config": plugin["config"],
            }
        )
        metadata["annotations"]["konghq.com/plugins"] = plugin_name
    credentials = [doc["metadata"]["name"] for doc in docs if doc["kind"] == "Secret"]
    docs.append(
        {
            "apiVersion": "configuration.konghq.com/v1",
            "kind": "KongConsumer",
            "metadata": metadata,
            "username": name,
            "credentials": credentials,
        }
    )
    return docs


def render(path: Path) -> str:
    consumers = [c for c in render_consumers(load_store(path)) if c["username"] != ANONYMOUS]
    docs = [doc for consumer in consumers for doc in consumer_resources(consumer)]
    return yaml.safe_dump_all(docs, sort_keys=False, width=1000)


if __name__ == "__main__":
    sys.stdout.write(render(Path(sys.argv[1]) if len(sys.argv) > 1 else store_path()))
