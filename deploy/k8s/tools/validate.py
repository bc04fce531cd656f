"""Validate rendered manifests offline: core kinds, operator CRDs and Gateway API (all kinds).

Runs in the tools venv: `.venv/tools/bin/python deploy/k8s/tools/validate.py RENDERED.yaml`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

HERE = Path(__file__).resolve().parent
SCHEMAS = HERE.parent / "schemas"
GATEWAY_GROUP = "gateway.networking.k8s.io"
DEFAULT_KUBERNETES_VERSION = "1.32.0"


def resource_name(doc: dict[str, Any]) -> str:
    return f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"


def crd_schema(doc: dict[str, Any]) -> Path | None:
    group, _, version = str(doc.get("apiVersion", "")).rpartition("/")
    path = SCHEMAS / group / f"{doc.get('kind')}_{version}.json"
    return path if group and path.exists() else None


def check_crd(doc: dict[str, Any], schema_path: Path) -> list[str]:
    schema = json.loads(schema_path.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(doc)
    ]


def check_core(doc: dict[str, Any], version: str) -> list[str]:
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'/'.join(map(str, error.path)) or '<root>'}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        # Fail closed: a kind nobody can check is a problem, not a pass.
        return [f"no schema for {doc.get('apiVersion')} {doc.get('kind')}"]
    return []


def check_gateway(docs: list[dict[str, Any]], node_modules: Path) -> list[dict[str, str]]:
    if not docs:
        return []
    lines = "".join(json.dumps(doc) + "\n" for doc in docs)
    result = subprocess.run(
        ["node", str(HERE / "validate_gateway.mjs"), str(node_modules)],
        input=lines,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    problems = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    if result.returncode and not problems:
        problems = [{"resource": "gateway-api", "problem": result.stderr.strip()[-2000:]}]
    return problems


def validate(docs: list[dict[str, Any]], version: str, node_modules: Path) -> list[dict[str, str]]:
    """Every problem found, as {resource, checker, problem}; empty when all docs pass."""
    problems: list[dict[str, str]] = []
    gateway = []
    for doc in docs:
        if str(doc.get("apiVersion", "")).startswith(GATEWAY_GROUP + "/"):
            gateway.append(doc)
            continue
        schema = crd_schema(doc)
        checker = "crd-schema" if schema else "kubernetes-validate"
        found = check_crd(doc, schema) if schema else check_core(doc, version)
        problems += [
            {"resource": resource_name(doc), "checker": checker, "problem": problem}
            for problem in found
        ]
    for problem in check_gateway(gateway, node_modules):
        problems.append({**problem, "checker": "gateway-api"})
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rendered", type=Path, help="output of `kubectl kustomize <overlay>`")
    parser.add_argument("--kubernetes-version", default=DEFAULT_KUBERNETES_VERSION)
    parser.add_argument("--node-modules", type=Path, required=True)
    args = parser.parse_args(argv)
    docs = [doc for doc in yaml.safe_load_all(args.rendered.read_text()) if doc]
    problems = validate(docs, args.kubernetes_version, args.node_modules)
    for problem in problems:
        print(json.dumps(problem))
    print(json.dumps({"checked": len(docs), "problems": len(problems)}), file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
