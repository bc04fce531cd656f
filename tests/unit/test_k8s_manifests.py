"""deploy/k8s offline: kustomize renders, schemas (core, CRDs, Gateway API), checkov, semantics.

Tools come from `make bootstrap` (.venv/tools, deploy/k8s/tools/install.sh) and kubectl.
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.auth import acl
from common.auth.store import create_consumer, create_issuer, load_store, store_path
from kong.consumers import anonymous_consumer
from kong.render import main as kong_render_main
from kong.render import parse_p_value, render, render_k8s_weights

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
TOOLS = ROOT / ".venv" / "tools"
NODE_MODULES = TOOLS / "npm" / "node_modules"
OVERLAYS = ("local", "production")
APP_IMAGE = "micro-users-orders"
WORKERS = {"users-v1": "users_v1", "users-v2": "users_v2", "orders": "orders"}
EDGES = ("edge-v1", "edge-v2")
CREDENTIALS_SECRET = "edge-credentials"  # pragma: allowlist secret
AUTH_PLUGINS = ("key-auth", "jwt")


def load_script(name: str) -> Any:
    """deploy/k8s's scripts are files, not package modules: load one from its path."""
    spec = importlib.util.spec_from_file_location(Path(name).name, K8S / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


worker_probe = load_script("base/worker_probe")
kong_consumers = load_script("kong_consumers")


def tool(path: Path | str | None, name: str) -> str:
    if path is None or not Path(path).exists():
        pytest.fail(f"{name} is missing: run `make bootstrap` (deploy/k8s/tools/install.sh)")
    return str(path)


def kubectl() -> str:
    return tool(shutil.which("kubectl"), "kubectl")


def kustomize(overlay_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl(), "kustomize", str(overlay_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def copy_tree(destination: Path) -> Path:
    """deploy/k8s copied with fresh local secrets, so nothing is written into the repo."""
    tree = destination / "k8s"
    shutil.copytree(K8S, tree, ignore=shutil.ignore_patterns("secrets", "__pycache__"))
    subprocess.run(
        [sys.executable, str(tree / "local_secrets.py"), str(tree / "overlays/local/secrets")],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return tree


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_tree(tmp_path_factory.mktemp("k8s"))


@pytest.fixture(scope="module")
def rendered(tree: Path) -> dict[str, Path]:
    """Each overlay's `kubectl kustomize` output, written to a file."""
    outputs = {}
    for overlay in OVERLAYS:
        result = kustomize(tree / "overlays" / overlay)
        assert result.returncode == 0, result.stderr
        outputs[overlay] = tree / f"{overlay}.rendered.yaml"
        outputs[overlay].write_text(result.stdout)
    return outputs


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def docs(rendered: dict[str, Path]) -> dict[str, list[dict[str, Any]]]:
    return {overlay: load(path) for overlay, path in rendered.items()}


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        doc
        for doc in docs
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)
    ]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = find(docs, kind, name)
    return doc


def validate(path: Path) -> tuple[int, list[dict[str, str]]]:
    result = subprocess.run(
        [
            tool(TOOLS / "bin" / "python", "the tools venv"),
            str(K8S / "tools" / "validate.py"),
            str(path),
            "--node-modules",
            tool(NODE_MODULES, "the Gateway API schemas (npm)"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, [json.loads(line) for line in result.stdout.splitlines()]


def checkov(config: Path, *files: Path) -> tuple[int, list[dict[str, Any]]]:
    """checkov's failed checks over `files` with `config`'s exceptions."""
    command = [tool(TOOLS / "bin" / "checkov", "checkov"), "--config-file", str(config)]
    for path in files:
        command += ["-f", str(path)]
    result = subprocess.run(
        [*command, "-o", "json"], capture_output=True, text=True, timeout=180, check=False
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [check for entry in reports for check in entry["results"]["failed_checks"]]
    return result.returncode, failed


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in {"Deployment", "StatefulSet", "Job"}:
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


# -- rendering and schemas -------------------------------------------------------------------
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_every_component(docs: dict[str, list], overlay: str) -> None:
    rendered = docs[overlay]
    deployments = {doc["metadata"]["name"] for doc in find(rendered, "Deployment")}
    assert deployments == {*WORKERS, *EDGES}
    for kind in ("PodDisruptionBudget", "HorizontalPodAutoscaler"):
        targets = {doc["metadata"]["name"] for doc in find(rendered, kind)}
        assert deployments <= targets, kind
    assert one(rendered, "RabbitmqCluster", "rabbitmq")["spec"]["replicas"] == 3
    assert one(rendered, "StatefulSet", "mongodb")["spec"]["replicas"] == 3
    # The HPAs own the replica counts: an apply must not reset a scale-out.
    assert all("replicas" not in doc["spec"] for doc in find(rendered, "Deployment"))
    minimum = {"local": 1, "production": 3}[overlay]
    assert {doc["spec"]["minReplicas"] for doc in find(rendered, "HorizontalPodAutoscaler")} == {
        minimum
    }
    # Production keeps a ready pod through a drain; local (one pod) must not block one.
    budget = {"local": {"maxUnavailable": 1}, "production": {"minAvailable": 1}}[overlay]
    for name in deployments:
        spec = one(rendered, "PodDisruptionBudget", name)["spec"]
        assert {key: spec[key] for key in spec if key != "selector"} == budget, name
    assert all(
        doc["metadata"].get("namespace") == "micro"
        for doc in rendered
        if doc["kind"] not in {"Namespace", "GatewayClass"}
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_passes_schema_validation(rendered: dict[str, Path], overlay: str) -> None:
    returncode, problems = validate(rendered[overlay])
    assert (returncode, problems) == (0, [])


def test_validation_rejects_broken_manifests(docs: dict[str, list], tmp_path: Path) -> None:
    """One mistake per checker: each is caught by the checker that owns that kind."""
    production = docs["production"]
    broken: dict[str, tuple[str, Callable[[dict[str, Any]], None]]] = {}
    out: list[dict[str, Any]] = []

    def breaks(kind: str, name: str, checker: str) -> Callable:
        def register(mutate: Callable[[dict[str, Any]], None]) -> None:
            broken[f"{kind}/broken-{name}"] = (checker, mutate)
            doc = copy.deepcopy(one(production, kind, name))
            doc["metadata"]["name"] = f"broken-{name}"
            mutate(doc)
            out.append(doc)

        return register

    @breaks("Deployment", "orders", "kubernetes-validate")
    def _typo(doc: dict[str, Any]) -> None:  # strict: an unknown field is an error
        container = doc["spec"]["template"]["spec"]["containers"][0]
        container["imagePullPolice"] = container.pop("imagePullPolicy")

    @breaks("HorizontalPodAutoscaler", "edge-v1", "kubernetes-validate")
    def _type(doc: dict[str, Any]) -> None:
        doc["spec"]["minReplicas"] = "two"

    @breaks("Permission", "orders", "crd-schema")
    def _no_vhost(doc: dict[str, Any]) -> None:
        del doc["spec"]["vhost"]

    @breaks("User", "edge", "crd-schema")
    def _bad_tag(doc: dict[str, Any]) -> None:
        doc["spec"]["tags"] = ["superuser"]

    @breaks("RabbitmqCluster", "rabbitmq", "crd-schema")
    def _replicas(doc: dict[str, Any]) -> None:
        doc["spec"]["replica"] = doc["spec"].pop("replicas")

    @breaks("Queue", "rpc-orders", "crd-schema")
    def _queue_type(doc: dict[str, Any]) -> None:
        doc["spec"]["type"] = "quorom"

    @breaks("KongPlugin", "rate-limiting", "crd-schema")
    def _no_plugin(doc: dict[str, Any]) -> None:
        del doc["plugin"]

    @breaks("KongConsumer", "anonymous", "crd-schema")
    def _no_username(doc: dict[str, Any]) -> None:
        del doc["username"]

    @breaks("HTTPRoute", "users-read", "gateway-api")
    def _weight(doc: dict[str, Any]) -> None:
        doc["spec"]["rules"][0]["backendRefs"][0]["weight"] = -1

    @breaks("HTTPRoute", "orders-write", "gateway-api")
    def _match(doc: dict[str, Any]) -> None:
        doc["spec"]["rules"][0]["matches"][0]["path"]["type"] = "Prefix"

    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    broken["Widget/w"] = ("kubernetes-validate", lambda doc: None)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump_all([*out, unknown]))

    returncode, problems = validate(path)
    assert returncode == 1
    found = {(problem["resource"], problem["checker"]) for problem in problems}
    assert found == {(resource, checker) for resource, (checker, _) in broken.items()}


def test_kustomize_refuses_a_reordered_users_route(tmp_path: Path) -> None:
    """The weights patch tests the backend names first: swapped backends fail the build."""
    tree = copy_tree(tmp_path)
    gateway = tree / "base" / "gateway.yaml"
    text = gateway.read_text()
    users = text.index("name: users-read\n")
    head, tail = text[:users], text[users:]
    tail = tail.replace("name: edge-v1", "name: SWAP", 1).replace(
        "name: edge-v2", "name: edge-v1", 1
    )
    gateway.write_text(head + tail.replace("name: SWAP", "name: edge-v2", 1))
    result = kustomize(tree / "overlays" / "production")
    assert result.returncode != 0
    assert "test" in result.stderr.lower()


# -- policy -----------------------------------------------------------------------------------
def test_checkov_passes_local_overlay(rendered: dict[str, Path]) -> None:
    returncode, failed = checkov(K8S / "overlays/local/checkov.yaml", rendered["local"])
    assert failed == [] and returncode == 0


def test_checkov_passes_production_and_flags_a_broken_pod(
    rendered: dict[str, Path], docs: dict[str, list], tmp_path: Path
) -> None:
    """One run: production clean, a privileged writable copy of an edge flagged."""
    doc = copy.deepcopy(one(docs["production"], "Deployment", "edge-v1"))
    doc["metadata"]["name"] = "broken-edge"
    container = doc["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"] = {"privileged": True, "readOnlyRootFilesystem": False}
    del container["livenessProbe"]
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(doc))
    config = K8S / "overlays/production/checkov.yaml"
    returncode, failed = checkov(config, rendered["production"], broken)
    assert returncode != 0
    assert {check["resource"] for check in failed} == {"Deployment.micro.broken-edge"}
    assert {"CKV_K8S_16", "CKV_K8S_22", "CKV_K8S_8"} <= {check["check_id"] for check in failed}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_checkov_exceptions_have_reasons(overlay: str) -> None:
    config = (K8S / "overlays" / overlay / "checkov.yaml").read_text()
    skipped = yaml.safe_load(config)["skip-check"]
    production = (K8S / "overlays/production/checkov.yaml").read_text()
    for check in skipped:
        reason = re.search(rf"((?:^ *#.*\n)+) *- {check}\n", config + production, re.M)
        assert reason, f"{check} is skipped without a reason"
    assert yaml.safe_load(config)["skip-download"] is True  # checkov phones home otherwise


# -- what the manifests must say ------------------------------------------------------------
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_non_root_read_only_and_bounded(
    docs: dict[str, list], overlay: str
) -> None:
    specs = dict(pod_specs(docs[overlay]))
    assert len(specs) == 8  # five Deployments, MongoDB, two Jobs
    for name, spec in specs.items():
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec.get("initContainers", []) + spec["containers"]:
            context = container["securityContext"]
            where = f"{name}/{container['name']}"
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), where
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), where
            if container["image"].split("/")[-1].startswith(APP_IMAGE):
                assert spec["securityContext"]["runAsUser"] == 10001, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_and_edges_run_the_documented_commands_with_probes(
    docs: dict[str, list], overlay: str
) -> None:
    for name, service in WORKERS.items():
        container = one(docs[overlay], "Deployment", name)["spec"]["template"]["spec"][
            "containers"
        ][0]
        assert container["command"] == [
            "nameko",
            "run",
            "--config",
            "config.yaml",
            f"workers.{service}",
        ]
        assert container["readinessProbe"]["exec"]["command"][-2:] == ["ready", service]
        assert container["livenessProbe"]["exec"]["command"][-1] == "live"
        env = {item["name"]: item for item in container["env"]}
        assert env["AMQP_USER"]["valueFrom"]["secretKeyRef"]["name"] == f"rabbitmq-{name}"
        assert env["DECLARE_RPC_EXCHANGE"]["value"] == "false"
    for name in EDGES:
        container = one(docs[overlay], "Deployment", name)["spec"]["template"]["spec"][
            "containers"
        ][0]
        assert container["command"][:3] == ["gunicorn", "-c", "http_edge/gunicorn_conf.py"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        env = {item["name"]: item for item in container["env"]}
        assert env["USERS_SERVICE"]["value"] == f"users_{name[-2:]}"
        assert env["AMQP_USER"]["valueFrom"]["secretKeyRef"]["name"] == "rabbitmq-edge"
    policies = {
        doc["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"]
        for doc in find(docs[overlay], "Deployment")
    }
    assert policies == ({"IfNotPresent"} if overlay == "local" else {"Always"})


def secret_refs(docs: list[dict[str, Any]]) -> set[str]:
    names = set()
    for _, spec in pod_specs(docs):
        for container in spec.get("initContainers", []) + spec["containers"]:
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    names.add(ref["name"])
        names |= {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
    names |= {doc["spec"]["importCredentialsSecret"]["name"] for doc in find(docs, "User")}
    return names


def test_secrets_are_generated_locally_and_external_in_production(
    docs: dict[str, list],
) -> None:
    assert find(docs["production"], "Secret") == []
    refs = secret_refs(docs["production"])
    assert len(refs) == 9
    local = {doc["metadata"]["name"]: doc for doc in find(docs["local"], "Secret")}
    assert set(local) == secret_refs(docs["local"]) == refs
    guide = (ROOT / "docs" / "kubernetes.md").read_text()
    assert all(f"`{name}`" in guide for name in refs), "docs/kubernetes.md lists every Secret"
    tracked = subprocess.run(
        ["git", "ls-files", "deploy/k8s"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [path for path in tracked if "/secrets/" in path]


# -- one source of truth: kong.yml.tmpl, P_VALUE, the broker's permission table -------------
def weights(rendered_docs: list[dict[str, Any]], route: str) -> list[tuple[str, int]]:
    rule = one(rendered_docs, "HTTPRoute", route)["spec"]["rules"][0]
    return [(ref["name"], ref["weight"]) for ref in rule["backendRefs"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_committed_weights_are_the_renderers_output(overlay: str) -> None:
    text = (K8S / "overlays" / overlay / "users-weights.yaml").read_text()
    p_value = parse_p_value(re.search(r"--p-value (\d+)", text).group(1))
    assert text == render_k8s_weights(p_value)


@pytest.mark.parametrize("p_value", [0, 30, 100])
def test_p_value_sets_the_users_split(tmp_path: Path, p_value: int, capsys) -> None:
    tree = copy_tree(tmp_path)
    patch = tree / "overlays" / "production" / "users-weights.yaml"
    assert kong_render_main(["--k8s-weights", "--p-value", str(p_value), "-o", str(patch)]) == 0
    result = kustomize(tree / "overlays" / "production")
    assert result.returncode == 0, result.stderr
    rendered_docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    expected = [("edge-v1", p_value), ("edge-v2", 100 - p_value)]
    for route in ("users-read", "users-write", "edge-meta"):
        assert weights(rendered_docs, route) == expected, route
    for route in ("orders-read", "orders-write"):
        assert weights(rendered_docs, route) == [("edge-v1", 1), ("edge-v2", 1)], route


def test_renderer_refuses_a_bad_p_value(capsys) -> None:
    for bad in ("101", "-1", "50.0", ""):
        assert kong_render_main(["--k8s-weights", "--p-value", bad]) == 2
        assert "P_VALUE must be an integer" in capsys.readouterr().err


def kong_plugins(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in find(docs, "KongPlugin")}


def attached(resource: dict[str, Any]) -> list[str]:
    return resource["metadata"]["annotations"]["konghq.com/plugins"].split(",")


def test_kong_resources_match_the_declarative_template(docs: dict[str, list]) -> None:
    kong = yaml.safe_load(render(50, "edge-v1:80", "edge-v2:80"))
    production = docs["production"]
    plugins = kong_plugins(production)
    global_plugins = {plugin["name"]: plugin["config"] for plugin in kong["plugins"]}
    assert {name: plugins[name]["config"] for name in global_plugins} == global_plugins
    assert all(plugins[name]["plugin"] == name for name in global_plugins)
    for route in find(production, "HTTPRoute"):
        assert set(global_plugins) <= set(attached(route)), route["metadata"]["name"]
        assert set(attached(route)) <= set(plugins), route["metadata"]["name"]
    services = {service["name"]: service for service in kong["services"]}
    # key-auth and jwt: one config on every protected service, the KongPlugin's.
    for service in services.values():
        for plugin in service.get("plugins", []):
            assert plugins[plugin["name"]]["config"] == plugin["config"], plugin["name"]
    route_plugins = [
        plugin
        for service in services.values()
        for route in service["routes"]
        for plugin in route.get("plugins", [])
    ]
    kong_acls = {tuple(p["config"]["allow"]) for p in route_plugins if p["name"] == "acl"}
    k8s_acls = {
        tuple(doc["config"]["allow"]) for doc in plugins.values() if doc["plugin"] == "acl"
    }
    assert k8s_acls == kong_acls == {(group,) for group in acl.GROUPS}
    (transformer,) = services["edge-meta"]["routes"][0]["plugins"]
    remover = plugins["remove-identity-headers"]
    assert (remover["plugin"], remover["config"]) == (transformer["name"], transformer["config"])
    # The anonymous placeholder: kong/consumers.py's, its plugins attached by annotation.
    (consumer,) = find(production, "KongConsumer")
    anonymous = anonymous_consumer()
    assert consumer["username"] == anonymous["username"] and "credentials" not in consumer
    own = [
        {"name": plugins[n]["plugin"], "config": plugins[n]["config"]} for n in attached(consumer)
    ]
    assert own == anonymous["plugins"]
    for edge in EDGES:
        annotations = one(production, "Service", edge)["metadata"]["annotations"]
        for kong_service in services.values():
            assert annotations["konghq.com/connect-timeout"] == str(
                kong_service["connect_timeout"]
            )
            assert annotations["konghq.com/read-timeout"] == str(kong_service["read_timeout"])
            assert annotations["konghq.com/retries"] == str(kong_service["retries"])
    kong_pins = {
        route["headers"]["X-Users-Version"][0]: f"edge-{name[-2:]}"
        for name in ("users-v1", "users-v2")
        for route in services[name]["routes"]
    }
    assert kong_pins == {"v1": "edge-v1", "v2": "edge-v2"}
    for name in ("users-pinned-read", "users-pinned-write"):
        pinned = {
            match["headers"][0]["value"]: rule["backendRefs"][0]["name"]
            for rule in one(production, "HTTPRoute", name)["spec"]["rules"]
            for match in rule["matches"]
        }
        assert pinned == kong_pins, name
    assert [c["username"] for c in kong["consumers"]] == ["anonymous", "end-users"]


def route_for(
    docs: list[dict[str, Any]], method: str, path: str, headers: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The HTTPRoute and rule a request takes, by Gateway API's precedence: exact path, longest
    prefix, a method match, most header matches. Two routes tied for it fail the test."""
    best: tuple[tuple, dict, dict] | None = None
    for route in find(docs, "HTTPRoute"):
        for rule in route["spec"]["rules"]:
            for match in rule["matches"]:
                value, exact = match["path"]["value"], match["path"]["type"] == "Exact"
                if not (path == value or (not exact and path.startswith(value + "/"))):
                    continue
                wanted = match.get("headers", [])
                if match.get("method", method) != method or any(
                    headers.get(header["name"]) != header["value"] for header in wanted
                ):
                    continue
                rank = (exact, len(value), "method" in match, len(wanted))
                if best and rank == best[0]:
                    assert best[1] is route, f"{method} {path} {headers}: two routes tie"
                if best is None or rank > best[0]:
                    best = (rank, route, rule)
    return (best[1], best[2]) if best else None


PROTECTED_PATHS = (
    "/users",
    "/users/",
    "/users/u1",
    "/orders",
    "/orders/",
    "/orders/o1",
    "/orders/o1/status",
    "/orders/o1/details",
)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_protected_route_needs_a_credential_and_its_acl_group(
    docs: dict[str, list], overlay: str
) -> None:
    """Every request under /users and /orders, by method and pin, meets key-auth, jwt and
    the acl group common/auth/acl.py names (read for GET/HEAD, write otherwise)."""
    rendered = docs[overlay]
    plugins = kong_plugins(rendered)
    acl_plugins = {name for name, doc in plugins.items() if doc["plugin"] == "acl"}
    checked = set()
    for path in PROTECTED_PATHS:
        assert acl.is_protected(path)
        for method in ("GET", "HEAD", "POST", "PUT", "DELETE"):
            prefix = path.split("/")[1]
            needed = acl.group_for(method, path) or (
                f"{prefix}:read" if method in ("GET", "HEAD") else f"{prefix}:write"
            )
            for version in (None, "v1", "v2"):
                headers = {"X-Users-Version": version} if version else {}
                found = route_for(rendered, method, path, headers)
                assert found, (method, path, version)
                route, rule = found
                names = attached(route)
                where = (method, path, version, route["metadata"]["name"])
                assert set(AUTH_PLUGINS) <= set(names), where
                groups = [
                    plugins[name]["config"]["allow"] for name in names if name in acl_plugins
                ]
                assert groups == [[needed]], where
                if version and prefix == "users":
                    assert [ref["name"] for ref in rule["backendRefs"]] == [f"edge-{version}"]
                checked.add(acl.group_for(method, path))
    assert checked - {None} == set(acl.GROUPS)
    for method, path in [("GET", "/health"), ("HEAD", "/health"), ("GET", "/docs"),
                         ("GET", "/docs/assets/ui.js"), ("GET", "/openapi.json")]:  # fmt: skip
        assert acl.is_open(method, path)
        route, _ = route_for(rendered, method, path, {})
        names = set(attached(route))
        assert not names & {*AUTH_PLUGINS, *acl_plugins}, path
        assert "remove-identity-headers" in names, path
    assert route_for(rendered, "GET", "/ready", {}) is None  # the edge's probe, not routed


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_edges_read_the_credentials_store_from_a_read_only_secret(
    docs: dict[str, list], overlay: str
) -> None:
    for name in EDGES:
        spec = one(docs[overlay], "Deployment", name)["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        env = {item["name"]: item.get("value") for item in container["env"]}
        assert env["AUTH_CREDENTIALS_FILE"] == "/run/auth/credentials.json", name
        (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/run/auth"]
        # No subPath: a subPath mount never sees the kubelet's updates of the Secret.
        assert mount == {"name": mount["name"], "mountPath": "/run/auth", "readOnly": True}
        (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
        source = volume["secret"]
        assert source["secretName"] == CREDENTIALS_SECRET
        assert source["items"] == [{"key": "credentials.json", "path": "credentials.json"}]
        assert source["defaultMode"] & 0o337 == 0, oct(source["defaultMode"])  # r--r-----
    # Only the edges hold the store: no other pod mounts or reads it.
    others = [doc for doc in docs[overlay] if doc["metadata"]["name"] not in EDGES]
    assert CREDENTIALS_SECRET not in secret_refs(others)


def test_local_credentials_secret_is_the_store_without_the_private_key(
    docs: dict[str, list], tmp_path: Path
) -> None:
    secret = one(docs["local"], "Secret", CREDENTIALS_SECRET)
    text = base64.b64decode(secret["data"]["credentials.json"]).decode()
    assert "PRIVATE KEY" not in text
    copy = tmp_path / "credentials.json"
    copy.write_text(text)
    source = load_store(store_path())  # conftest's session store ($AUTH_CREDENTIALS_FILE)
    assert load_store(copy) == source
    assert source.consumers and source.issuers


def test_no_secret_with_data_is_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "deploy/k8s"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    manifests = [path for path in tracked if path.endswith((".yaml", ".yml"))]
    assert len(manifests) > 10
    for path in manifests:
        for doc in yaml.safe_load_all((ROOT / path).read_text()):
            assert not (isinstance(doc, dict) and doc.get("kind") == "Secret"), path
            for generator in (
                (doc or {}).get("secretGenerator", []) if isinstance(doc, dict) else []
            ):
                assert "literals" not in generator, (path, generator["name"])
                sources = generator.get("files", []) + generator.get("envs", [])
                assert all("secrets/" in source for source in sources), generator["name"]


def test_consumer_resources_come_from_the_store(tmp_path: Path) -> None:
    """deploy/k8s/kong_consumers.py: the store's consumers as KIC resources, schema-checked."""
    path = tmp_path / "auth" / "credentials.json"
    key = create_consumer(path, "ci_bot", ["orders:read"], {"second": 5})
    create_issuer(path)
    text = kong_consumers.render(path)
    assert key in text and "PRIVATE KEY" not in text
    out = tmp_path / "consumers.yaml"
    out.write_text(text)
    assert validate(out) == (0, [])
    generated = load(out)
    secrets = {doc["metadata"]["name"]: doc for doc in find(generated, "Secret")}
    consumers = {doc["username"]: doc for doc in find(generated, "KongConsumer")}
    assert set(consumers) == {"ci_bot", "end-users"}  # anonymous is the base's

    def credentials(consumer: dict[str, Any], kind: str) -> list[dict[str, str]]:
        return [
            secrets[name]["stringData"]
            for name in consumer["credentials"]
            if secrets[name]["metadata"]["labels"]["konghq.com/credential"] == kind
        ]

    bot = consumers["ci_bot"]
    assert bot["metadata"]["name"] == "ci-bot"
    assert credentials(bot, "key-auth") == [{"key": key}]
    assert credentials(bot, "acl") == [{"group": "orders:read"}]
    (limit,) = [one(generated, "KongPlugin", name) for name in attached(bot)]
    assert limit["plugin"] == "rate-limiting"
    assert limit["config"] == {"second": 5, "policy": "local", "limit_by": "consumer"}
    users = consumers["end-users"]
    assert sorted(group["group"] for group in credentials(users, "acl")) == sorted(acl.GROUPS)
    (jwt,) = credentials(users, "jwt")
    issuer = load_store(path).issuers["micro-local"]
    assert (jwt["key"], jwt["algorithm"]) == ("micro-local", "RS256")
    assert jwt["rsa_public_key"] == issuer.rsa_public_key
    assert set(secrets) == {name for c in consumers.values() for name in c["credentials"]}
    assert all(re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name) for name in secrets)


def test_permissions_match_the_broker_accounts_table(docs: dict[str, list]) -> None:
    broker_accounts = pytest.importorskip(
        "launch.broker_accounts", reason="the least-privilege table (branch broker) not merged"
    )
    production = docs["production"]
    table = broker_accounts.accounts()
    users = {doc["metadata"]["name"]: doc for doc in find(production, "User")}
    permissions = {doc["metadata"]["name"]: doc for doc in find(production, "Permission")}
    assert set(users) == set(permissions) == {name.replace("_", "-") for name in table}
    for component, account in table.items():
        name = component.replace("_", "-")
        assert permissions[name]["spec"]["permissions"] == account.permissions(), component
        assert permissions[name]["spec"]["userReference"] == {"name": name}
        assert users[name]["spec"]["tags"] == list(account.tags), component
    exchanges = {doc["spec"]["name"] for doc in find(production, "Exchange")}
    assert exchanges == set(broker_accounts.shared_exchanges())


def test_queues_are_the_quorum_queues_the_workers_declare(docs: dict[str, list]) -> None:
    from launch.broker_accounts import consumed_queues

    declared = {}
    for doc in find(docs["production"], "Queue"):
        spec = doc["spec"]
        assert (spec["type"], spec["durable"], spec["autoDelete"]) == ("quorum", True, False)
        declared[spec["name"]] = {"x-queue-type": spec["type"], **spec.get("arguments", {})}
    assert declared == consumed_queues()
    assert len(declared) == 7  # three RPC queues, two event queues and their dead letters


# -- NetworkPolicies, evaluated ----------------------------------------------------------------
PODS = {
    "kong": ("kong", {"app.kubernetes.io/name": "kong"}),
    "stranger": ("micro", {"app.kubernetes.io/name": "debug"}),
    "other-ns": ("shop", {"app.kubernetes.io/component": "worker"}),
    "edge": (
        "micro",
        {"app.kubernetes.io/name": "edge-v1", "app.kubernetes.io/component": "edge"},
    ),
    "worker": (
        "micro",
        {"app.kubernetes.io/name": "orders", "app.kubernetes.io/component": "worker"},
    ),
    "db-setup": ("micro", {"app.kubernetes.io/name": "db-setup"}),
    "rabbitmq": ("micro", {"app.kubernetes.io/name": "rabbitmq"}),
    "mongodb": ("micro", {"app.kubernetes.io/name": "mongodb"}),
    "rabbitmq-operator": ("rabbitmq-system", {"app.kubernetes.io/name": "topology-operator"}),
}


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression  # the only one the manifests use
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def peer_matches(peer: dict[str, Any], policy_ns: str, pod: str) -> bool:
    namespace, labels = PODS[pod]
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": namespace}):
            return False
    elif namespace != policy_ns:
        return False
    return selects(peer.get("podSelector", {}), labels)


def side_allows(
    policies: list[dict[str, Any]], direction: str, pod: str, peer: str, port: int
) -> bool:
    """Kubernetes semantics: unselected pods allow all; selected ones only what a rule says."""
    namespace, labels = PODS[pod]
    relevant = [
        policy
        for policy in policies
        if policy["metadata"]["namespace"] == namespace
        and direction.capitalize() in policy["spec"]["policyTypes"]
        and selects(policy["spec"]["podSelector"], labels)
    ]
    if not relevant:
        return True
    key = "from" if direction == "ingress" else "to"
    for policy in relevant:
        for rule in policy["spec"].get(direction, []):
            ports = rule.get("ports")
            port_ok = ports is None or any(
                entry["port"] <= port <= entry.get("endPort", entry["port"]) for entry in ports
            )
            peers = rule.get(key)
            peer_ok = peers is None or any(peer_matches(entry, namespace, peer) for entry in peers)
            if port_ok and peer_ok:
                return True
    return False


def reachable(policies: list[dict[str, Any]], source: str, target: str, port: int) -> bool:
    return side_allows(policies, "egress", source, target, port) and side_allows(
        policies, "ingress", target, source, port
    )


def test_network_policies_allow_only_the_documented_paths(docs: dict[str, list]) -> None:
    policies = find(docs["production"], "NetworkPolicy")
    allowed = {
        ("kong", "edge", 8000),
        ("edge", "rabbitmq", 5672),
        ("worker", "rabbitmq", 5672),
        ("worker", "mongodb", 27017),
        ("db-setup", "mongodb", 27017),
        ("mongodb", "mongodb", 27017),
        ("rabbitmq", "rabbitmq", 25672),
        ("rabbitmq-operator", "rabbitmq", 15672),
    }
    ports = {8000, 5672, 15672, 25672, 27017}
    in_namespace = [pod for pod, (namespace, _) in PODS.items() if namespace == "micro"]
    for source in PODS:
        for target in in_namespace:
            for port in ports:
                expected = (source, target, port) in allowed
                assert reachable(policies, source, target, port) == expected, (
                    source,
                    target,
                    port,
                )
    # Nothing in the namespace reaches the outside world (other than DNS).
    assert not side_allows(policies, "egress", "edge", "other-ns", 443)
    assert side_allows(policies, "egress", "stranger", "other-ns", 443) is False


# -- the worker probe ---------------------------------------------------------------------------
def test_worker_probe_sees_a_real_established_connection() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert not worker_probe.has_connection_to(port)
        with socket.create_connection(("127.0.0.1", port)):
            peer, _ = server.accept()
            with peer:
                assert worker_probe.has_connection_to(port)
    assert worker_probe.broker_port("amqp://u:p@rabbitmq:5673/") == 5673
    assert worker_probe.broker_port("amqp://u:p@rabbitmq/") == 5672


def test_worker_probe_fails_without_a_broker_link(monkeypatch, capsys) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    monkeypatch.setenv("AMQP_URI", f"amqp://u:p@127.0.0.1:{port}/")
    assert worker_probe.main(["live"]) == 1
    assert worker_probe.main(["ready", "orders"]) == 1
    monkeypatch.delenv("AMQP_URI")
    assert worker_probe.main(["live"]) == 2
