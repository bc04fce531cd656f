"""Gateway conformance (SPEC §7, §8): the same cases against the local nginx gateway and,
with GATEWAY_CONFORMANCE_URL set, against Kong in compose (docs/security.md says how).

Locally a real nginx is rendered from a store this module creates, in front of stub edges
that record what reached them. Against Kong, GATEWAY_CONFORMANCE_CREDENTIALS names the store
Kong was rendered from (with the `conf-*` consumers below) and GATEWAY_CONFORMANCE_METRICS_URL
Kong's /metrics; cases that must look at what reached an edge, or change the store, run
locally only.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from common.auth import store
from common.auth.acl import GROUPS
from kong.consumers import consumer_id
from kong.local_gateway import reload_gateway
from tests.support.gateway import StubEdge, running_gateway, stub_edge
from tests.support.net import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

REMOTE_URL = os.environ.get("GATEWAY_CONFORMANCE_URL", "").rstrip("/")
LIMIT = 5  # conf-limited's requests per second
ALLOWED_ORIGIN, REFUSED_ORIGIN = "http://localhost:8000", "https://evil.example"
CONSUMERS = {
    "conf-all": (GROUPS, None),
    "conf-reader": (("users:read",), None),
    "conf-limited": (GROUPS, {"second": LIMIT}),
    "conf-revoked": (GROUPS, None),
}
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$")
local_only = pytest.mark.skipif(bool(REMOTE_URL), reason="looks at the stub edges / the store")


@dataclass
class Target:
    url: str
    store: Path
    metrics_url: str | None
    edges: tuple[StubEdge, ...] = ()
    run_dir: Path | None = None
    env: dict[str, str] | None = None

    @property
    def local(self) -> bool:
        return bool(self.edges)

    def key(self, consumer: str) -> dict[str, str]:
        return {"apikey": store.load_store(self.store).consumers[consumer].keys[0].key}

    def forget(self) -> None:
        for edge in self.edges:
            edge.headers.clear()

    def last_request(self) -> dict[str, str]:
        """The headers of the one request the stub edges received since forget()."""
        (seen,) = [headers for edge in self.edges for headers in edge.headers]
        return seen


def make_store(path: Path) -> None:
    store.ensure_local_credentials(path, "dev")
    for name, (groups, limits) in CONSUMERS.items():
        store.create_consumer(path, name, groups, limits)


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> Iterator[Target]:
    if REMOTE_URL:
        credentials = Path(os.environ["GATEWAY_CONFORMANCE_CREDENTIALS"])
        metrics = os.environ.get("GATEWAY_CONFORMANCE_METRICS_URL")
        yield Target(REMOTE_URL, credentials, metrics)
        return
    base = tmp_path_factory.mktemp("conformance")
    credentials = base / "auth" / "credentials.json"
    make_store(credentials)
    status_port = free_port()
    with (
        stub_edge("v1") as v1,
        stub_edge("v2") as v2,
        running_gateway(
            base,
            p_value="50",
            v1_port=v1.port,
            v2_port=v2.port,
            rate_limit_per_second=10_000,
            status_port=status_port,
            credentials=credentials,
        ) as url,
    ):
        env = {"AUTH_CREDENTIALS_FILE": str(credentials)}
        yield Target(url, credentials, f"http://127.0.0.1:{status_port}/metrics", (v1, v2),
                     base, env)  # fmt: skip


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def token(target: Target, **claims) -> str:
    """An RS256 token signed by the store's issuer (or `key=` another private key)."""
    key = claims.pop("key", None) or store.private_key_path(target.store).read_bytes()
    now = int(time.time())
    body = {"iss": store.LOCAL_ISSUER, "sub": "u1", "exp": now + 300, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm="RS256")


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def assert_problem(target: Target, response: requests.Response, status: int, detail: str):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["detail"] == detail
    assert body["requestId"] == response.headers["X-Request-ID"]
    assert body["type"] == "about:blank"
    if target.local:  # Kong's error_template_json cannot carry the status (docs/security.md)
        assert response.headers["Content-Type"] == "application/problem+json"
        assert body["status"] == status
        assert set(body) == {"type", "title", "status", "detail", "requestId"}


def assert_unauthorized(target: Target, response: requests.Response) -> None:
    assert_problem(target, response, 401, "Unauthorized")
    assert response.headers["WWW-Authenticate"] == 'Key realm="kong"'


# -- 401: no, unknown, revoked or expired credentials -------------------------------------
@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/users/u1"), ("POST", "/users/"), ("GET", "/orders/"),
                         ("PUT", "/orders/o1/status"), ("DELETE", "/users/u1")],
)  # fmt: skip
def test_no_credentials_is_401_with_www_authenticate(target, http, method, path):
    assert_unauthorized(target, http.request(method, f"{target.url}{path}"))


@pytest.mark.parametrize("key", ["nope", "x" * 43, ""])
def test_an_unknown_key_is_401(target, http, key):
    assert_unauthorized(target, http.get(f"{target.url}/users/u1", headers={"apikey": key}))


def test_two_api_keys_are_401(target):
    headers = [("apikey", target.key("conf-all")["apikey"]), ("apikey", "other")]
    # requests folds repeated headers into one; http.client sends each.
    parts = urlsplit(target.url)
    connection = HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.putrequest("GET", "/users/u1")
    for name, value in headers:
        connection.putheader(name, value)
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 401
    assert response.getheader("WWW-Authenticate") == 'Key realm="kong"'
    connection.close()


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 10},  # expired
        {"exp": None},  # exp is required
        {"exp": "soon"},  # not a number
        {"iss": "someone-else"},  # unknown issuer
        {"iss": None},  # no issuer at all
    ],
    ids=["expired", "no-exp", "exp-not-a-number", "unknown-iss", "no-iss"],
)
def test_a_bad_token_is_401(target, http, claims):
    response = http.get(f"{target.url}/users/u1", headers=bearer(token(target, **claims)))

    assert_unauthorized(target, response)


def test_a_token_signed_by_another_key_is_401(target, http):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    response = http.get(f"{target.url}/users/u1", headers=bearer(token(target, key=other)))

    assert_unauthorized(target, response)


OTHER_CLAIMS = jwt.utils.base64url_encode(
    b'{"iss":"micro-local","sub":"u2","exp":9999999999}'
).decode()


@pytest.mark.parametrize("mangle", ["payload", "signature", "garbage", "hs256", "typ"])
def test_a_tampered_or_malformed_token_is_401(target, http, mangle):
    header, payload, signature = token(target).split(".")
    forged = {
        # Same signature over claims that now say another user.
        "payload": f"{header}.{OTHER_CLAIMS}.{signature}",
        "signature": f"{header}.{payload}.{signature[:-6]}AAAAAA",
        "garbage": "not.a.jwt",
        "hs256": jwt.encode({"iss": store.LOCAL_ISSUER, "exp": 9999999999}, "k" * 32, "HS256"),
        "typ": jwt.encode({"iss": store.LOCAL_ISSUER, "exp": 9999999999},
                          store.private_key_path(target.store).read_bytes(), "RS256",
                          headers={"typ": 7}),
    }[mangle]  # fmt: skip

    assert_unauthorized(target, http.get(f"{target.url}/users/u1", headers=bearer(forged)))


@local_only
def test_a_revoked_key_is_401_after_the_reload(target, http):
    headers = target.key("conf-revoked")
    assert http.get(f"{target.url}/users/u1", headers=headers).status_code == 200

    store.revoke_consumer(target.store, "conf-revoked")
    started = time.monotonic()
    reload_gateway(target.run_dir, target.env)
    took = time.monotonic() - started

    assert_unauthorized(target, requests.get(f"{target.url}/users/u1", headers=headers))
    assert took < 5.0, took


# -- either credential works ----------------------------------------------------------------
def test_a_valid_token_passes_as_the_issuers_consumer(target, http):
    target.forget()
    response = http.get(f"{target.url}/users/u1", headers=bearer(token(target)))

    assert response.status_code == 200
    if target.local:
        seen = target.last_request()
        assert seen["x-consumer-username"] == "end-users"
        assert seen["x-consumer-id"] == consumer_id("end-users")
        assert seen["x-credential-identifier"] == store.LOCAL_ISSUER


def test_a_bad_token_beside_a_valid_key_passes_on_the_key(target, http):
    headers = {**target.key("conf-all"), **bearer("not.a.jwt")}

    assert http.get(f"{target.url}/orders/o1", headers=headers).status_code == 200


# -- 403: valid credentials without the group -----------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/users/u1", 200), ("HEAD", "/users/u1", 200), ("POST", "/users/", 403),
     ("PUT", "/users/u1", 403), ("GET", "/orders/", 403), ("POST", "/orders/", 403),
     ("PUT", "/orders/o1/details", 403)],
)  # fmt: skip
def test_a_key_lacking_the_group_is_403(target, http, method, path, status):
    response = http.request(method, f"{target.url}{path}", headers=target.key("conf-reader"))

    if status == 403:
        assert_problem(target, response, 403, "You cannot consume this service")
        assert "WWW-Authenticate" not in response.headers
    else:
        assert response.status_code == status


# -- 429: a consumer's own limit ------------------------------------------------------------
def _burst(target: Target, count: int) -> list[requests.Response]:
    headers = target.key("conf-limited")

    def one(_: int) -> requests.Response:
        return requests.get(f"{target.url}/orders/o1", headers=headers, timeout=10)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(count)))


def test_a_limited_consumer_gets_exactly_n_per_second_then_429(target):
    for _ in range(3):  # three windows: a counting race shows up as N+1 somewhere
        time.sleep(1.05 - time.time() % 1)  # start just after a window opens
        responses = _burst(target, 3 * LIMIT)
        # The gateway's clock decides the window; its Date header has the same clock.
        by_second: dict[str, Counter[int]] = {}
        for response in responses:
            by_second.setdefault(response.headers["Date"], Counter())[response.status_code] += 1
        for statuses in by_second.values():
            assert set(statuses) <= {200, 429}, statuses
            assert statuses[200] == min(LIMIT, sum(statuses.values())), by_second
        assert Counter(r.status_code for r in responses)[429] >= LIMIT, by_second
        limited = next(r for r in responses if r.status_code == 429)
        assert_problem(target, limited, 429, "API rate limit exceeded")
        assert limited.headers["RateLimit-Limit"] == str(LIMIT)
        assert limited.headers["RateLimit-Remaining"] == "0"
        assert limited.headers["RateLimit-Reset"] == "1"
        assert limited.headers["Retry-After"] == "1"
        assert limited.headers["X-RateLimit-Limit-Second"] == str(LIMIT)
        assert limited.headers["X-RateLimit-Remaining-Second"] == "0"


def test_successful_responses_carry_the_ratelimit_headers(target):
    time.sleep(1.05 - time.time() % 1)
    first = requests.get(f"{target.url}/orders/o1", headers=target.key("conf-limited"))

    assert first.status_code == 200
    assert first.headers["RateLimit-Limit"] == str(LIMIT)
    assert first.headers["RateLimit-Remaining"] == str(LIMIT - 1)
    assert first.headers["X-RateLimit-Remaining-Second"] == str(LIMIT - 1)
    assert first.headers["RateLimit-Reset"] == "1"
    assert "Retry-After" not in first.headers


def test_an_unlimited_consumer_is_under_the_per_ip_backstop_only(target, http):
    response = http.get(f"{target.url}/orders/o1", headers=target.key("conf-all"))

    assert response.status_code == 200
    assert int(response.headers["RateLimit-Limit"]) > LIMIT


# -- CORS ----------------------------------------------------------------------------------
def preflight(target: Target, origin: str) -> requests.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "apikey,content-type",
    }
    return requests.options(f"{target.url}/users/u1", headers=headers)


def test_a_preflight_from_an_allowed_origin_is_answered_before_authentication(target):
    response = preflight(target, ALLOWED_ORIGIN)

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "PUT" in response.headers["Access-Control-Allow-Methods"].split(",")
    assert "apikey" in response.headers["Access-Control-Allow-Headers"].split(",")
    assert response.headers["Access-Control-Max-Age"] == "3600"
    assert "Origin" in response.headers["Vary"]


def test_a_preflight_from_a_refused_origin_gets_no_allow_origin(target):
    response = preflight(target, REFUSED_ORIGIN)

    assert response.status_code == 200  # Kong answers; the browser then refuses
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (ALLOWED_ORIGIN, True),
        (REFUSED_ORIGIN, False),
        # an allowed origin as the prefix of another host is another origin
        (ALLOWED_ORIGIN + ".evil.example", False),
        (ALLOWED_ORIGIN + "0", False),
    ],
)
def test_actual_requests_get_allow_origin_only_for_an_allowed_origin(target, origin, allowed):
    headers = {**target.key("conf-all"), "Origin": origin}
    response = requests.get(f"{target.url}/orders/o1", headers=headers)

    assert response.status_code == 200
    assert response.headers.get("Access-Control-Allow-Origin") == (origin if allowed else None)
    assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]


# -- identity headers ------------------------------------------------------------------------
FORGED = {
    "X-Consumer-ID": "00000000-0000-0000-0000-000000000000",
    "X-Consumer-Username": "admin",
    "X-Consumer-Custom-ID": "admin",
    "X-Consumer-Groups": "users:write, orders:write",
    "X-Credential-Identifier": "forged",
    "X-Anonymous-Consumer": "false",
    "X-Authenticated-Groups": "orders:write",
}


def test_forged_identity_headers_without_credentials_grant_nothing(target, http):
    assert_unauthorized(target, http.post(f"{target.url}/orders/", headers=FORGED, json={}))


def test_forged_identity_headers_beside_a_key_grant_nothing_more(target, http):
    headers = {**FORGED, **target.key("conf-reader")}

    assert http.post(f"{target.url}/users/", headers=headers, json={}).status_code == 403


@local_only
def test_forged_identity_headers_are_replaced_by_the_gateways(target, http):
    headers = {**FORGED, **target.key("conf-reader")}
    key_id = store.load_store(target.store).consumers["conf-reader"].keys[0].id

    target.forget()
    assert http.get(f"{target.url}/users/u1", headers=headers).status_code == 200

    seen = target.last_request()
    assert seen["x-consumer-id"] == consumer_id("conf-reader")
    assert seen["x-consumer-username"] == "conf-reader"
    assert seen["x-consumer-groups"] == "users:read"
    assert seen["x-credential-identifier"] == key_id
    for absent in ("x-consumer-custom-id", "x-anonymous-consumer", "x-authenticated-groups"):
        assert absent not in seen
    assert seen["apikey"] == headers["apikey"]  # hide_credentials: false (the edge verifies)


@local_only
def test_forged_identity_headers_never_reach_an_edge_on_open_paths(target, http):
    target.forget()
    assert http.get(f"{target.url}/health", headers=FORGED).status_code == 200

    seen = target.last_request()
    assert not {name.lower() for name in FORGED} & set(seen), seen


# -- open paths -----------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/health", "/docs", "/docs/", "/openapi.json"])
def test_open_paths_need_no_credentials(target, http, path):
    response = http.get(f"{target.url}{path}")

    assert response.status_code == 200
    assert "WWW-Authenticate" not in response.headers


@pytest.mark.parametrize("path", ["/ready", "/metrics"])
def test_the_probe_and_metrics_are_not_routed(target, http, path):
    assert http.get(f"{target.url}{path}").status_code == 404


# -- traceparent ----------------------------------------------------------------------------
@local_only
def test_a_valid_traceparent_is_continued(target, http):
    sent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    target.forget()
    http.get(f"{target.url}/orders/o1", headers={**target.key("conf-all"), "traceparent": sent})

    assert target.last_request()["traceparent"] == sent  # passed on as is (docs/security.md)


@local_only
@pytest.mark.parametrize(
    "sent",
    [None, "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
     "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
     "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
     "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"],
)  # fmt: skip
def test_a_missing_or_invalid_traceparent_is_replaced_by_a_new_trace(target, http, sent):
    headers = {**target.key("conf-all"), **({"traceparent": sent} if sent else {})}

    target.forget()
    http.get(f"{target.url}/orders/o1", headers=headers)
    first = target.last_request()["traceparent"]
    target.forget()
    http.get(f"{target.url}/orders/o1", headers=headers)
    second = target.last_request()["traceparent"]

    assert TRACEPARENT.match(first) and TRACEPARENT.match(second), (first, second)
    assert first != sent and first.split("-")[1] != second.split("-")[1]


@local_only
def test_the_access_log_carries_the_trace_id(target, http):
    sent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    http.get(f"{target.url}/orders/o1", headers={**target.key("conf-all"), "traceparent": sent})

    log = (target.run_dir / "gateway" / "logs" / "access.log").read_text()
    assert "trace_id=0af7651916cd43dd8448eb211c80319c consumer=conf-all" in log


@local_only
@pytest.mark.parametrize("query", ["apikey={key}", "status=shipping&APIKEY={key}", "jwt={key}"])
def test_a_credential_in_the_query_is_refused_and_never_logged(target, http, query):
    key = target.key("conf-all")["apikey"]
    request_id = f"query-credential-{time.monotonic_ns()}"
    url = f"{target.url}/orders/?{query.format(key=key)}"

    # A harmless query is still logged as sent.
    assert http.get(f"{target.url}/orders/?status=shipping", headers=target.key("conf-all")).ok
    assert_unauthorized(target, http.get(url, headers={"X-Request-ID": request_id}))

    access_log = target.run_dir / "gateway" / "logs" / "access.log"
    deadline = time.monotonic() + 5  # nginx writes the line after sending the response
    while f"rid={request_id} " not in (log := access_log.read_text()):
        assert time.monotonic() < deadline, "the request was never logged"
        time.sleep(0.02)
    assert key not in log
    (line,) = [line for line in log.splitlines() if f"rid={request_id} " in line]
    assert '"GET /orders/?(redacted: names a credential) HTTP/1.1" 401' in line
    assert '"GET /orders/?status=shipping HTTP/1.1" 200' in log


# -- kong_* metrics ----------------------------------------------------------------------------
SERIES = re.compile(r"^(?P<name>[a-z_]+)\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


def scrape(target: Target) -> dict[tuple[str, frozenset], float]:
    text = requests.get(target.metrics_url, timeout=10).text
    series = {}
    for line in text.splitlines():
        match = SERIES.match(line)
        if match:
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
            series[(match["name"], labels)] = float(match["value"])
    return series


def delta(before: dict, after: dict, name: str, **labels: str) -> float:
    wanted = set(labels.items())

    def total(series: dict) -> float:
        return sum(v for (n, ls), v in series.items() if n == name and wanted <= ls)

    return total(after) - total(before)


def test_kong_counters_move_by_exactly_the_requests_sent(target, http):
    if not target.metrics_url:
        pytest.skip("GATEWAY_CONFORMANCE_METRICS_URL not set")
    before = scrape(target)
    for _ in range(3):
        assert http.get(f"{target.url}/users/u7", headers=target.key("conf-all")).ok
    for _ in range(2):
        assert http.get(f"{target.url}/orders/").status_code == 401
    assert http.post(f"{target.url}/users/", headers=target.key("conf-reader")).status_code == 403
    after = scrape(target)

    requests_total = "kong_http_requests_total"
    common = {"workspace": "default"}
    assert delta(before, after, requests_total, service="users", route="users-read",
                 code="200", source="service", consumer="conf-all", **common) == 3  # fmt: skip
    assert delta(before, after, requests_total, service="orders", route="orders-read",
                 code="401", source="kong", consumer="anonymous", **common) == 2  # fmt: skip
    assert delta(before, after, requests_total, service="users", route="users-write",
                 code="403", source="kong", consumer="conf-reader", **common) == 1  # fmt: skip
    assert delta(before, after, "kong_request_latency_ms_count", route="users-read") == 3
    assert delta(before, after, "kong_kong_latency_ms_count", route="orders-read") == 2
    assert delta(before, after, "kong_upstream_latency_ms_count", route="users-read") == 3
    assert delta(before, after, "kong_upstream_latency_ms_count", route="orders-read") == 0
    assert delta(before, after, "kong_request_latency_ms_bucket", route="users-read",
                 le="+Inf") == 3  # fmt: skip
    assert delta(before, after, "kong_bandwidth_bytes", route="users-read",
                 direction="egress", consumer="conf-all") > 0  # fmt: skip


def test_every_kong_series_the_dashboard_and_alerts_query_is_exported(target, http):
    if not target.metrics_url:
        pytest.skip("GATEWAY_CONFORMANCE_METRICS_URL not set")
    assert http.get(f"{target.url}/users/u7", headers=target.key("conf-all")).ok
    deploy = Path(__file__).resolve().parents[2] / "deploy"
    texts = [(deploy / "grafana" / "dashboards" / "micro.json").read_text()]
    texts += [path.read_text() for path in (deploy / "prometheus" / "rules").glob("*.yml")]
    queried = {name for text in texts for name in re.findall(r"\bkong_[a-z_]+", text)}
    series = scrape(target)

    assert queried, "the dashboard queries no kong_* series any more"
    for name in queried:
        labels = [dict(ls) for n, ls in series if n == name]
        assert labels, f"{name} is not exported"
        # The panels slice by these (sum by (service, route) / (le, service)).
        assert all({"service", "route"} <= set(ls) for ls in labels), name


@local_only
def test_a_reload_drops_no_request(target):
    """Keys change while requests flow: every request gets an answer from the old or the new
    configuration, none is refused by the switch itself.

    One connection per request: nginx (and so Kong) closes idle keep-alive connections when
    old workers retire, so a request sent on one at that instant sees the connection closed
    and must be retried by the client (docs/security.md).
    """
    headers = {**target.key("conf-all"), "Connection": "close"}
    statuses: Counter[int] = Counter()
    stop = False

    def load() -> None:
        while not stop:
            statuses[requests.get(f"{target.url}/orders/o1", headers=headers).status_code] += 1

    with ThreadPoolExecutor(max_workers=4) as pool:
        running = [pool.submit(load) for _ in range(4)]
        for round_ in range(3):
            store.create_consumer(target.store, f"conf-new-{round_}", GROUPS)
            reload_gateway(target.run_dir, target.env)
        stop = True
        for future in running:
            future.result()

    assert set(statuses) == {200}, statuses
    assert sum(statuses.values()) > 20
    new_key = target.key("conf-new-2")
    assert requests.get(f"{target.url}/orders/o1", headers=new_key).status_code == 200
