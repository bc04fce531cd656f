"""Local gateway glue: render kong.yml, generate nginx.conf and the Lua table from it, hand
back the nginx argv.

Used by the launch spec (launch/spec.py); `python -m kong.local_gateway reload` re-renders
a running gateway (a new P_VALUE, changed credentials) and switches it over with a HUP.
The settings it was started with are kept in gateway/settings.json, so a reload from
another shell changes only what that shell sets.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from common import defaults
from kong.lua_config import lua_config_json
from kong.nginx import LUA_CONFIG_NAME, LUA_MODULES, MODULES_DIR, generate_nginx_conf, route_groups
from kong.render import credentials_path, render_from_env, write_atomically

_NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")


def nginx_binary() -> str:
    """Path of nginx, or a RuntimeError saying how to install it."""
    found = shutil.which("nginx") or next(
        (path for path in _NGINX_CANDIDATES if os.access(path, os.X_OK)), None
    )
    if found is None:
        raise RuntimeError(
            "nginx is not installed; the local gateway needs it. "
            "Run scripts/bootstrap.sh or: apt-get install -y nginx-light"
        )
    return found


def gateway_dir(run_dir: Path) -> Path:
    return Path(run_dir).resolve() / "gateway"


def gateway_listen(env: Mapping[str, str]) -> str:
    port = str(env.get("GATEWAY_PORT", defaults.GATEWAY_PORT)).strip()
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"GATEWAY_PORT must be a TCP port number (1..65535), got {port!r}.")
    return f"{env.get('GATEWAY_HOST', defaults.GATEWAY_HOST)}:{port}"


# What a gateway's rendering depends on; kept for `reload` from another shell.
SETTINGS = (
    "P_VALUE", "GATEWAY_HOST", "GATEWAY_PORT", "GATEWAY_STATUS_PORT", "EDGE_V1_PORT",
    "EDGE_V2_PORT", "GATEWAY_RATE_LIMIT_PER_SECOND", "GATEWAY_CLIENT_TIMEOUT", "CORS_ORIGINS",
    "AUTH_CREDENTIALS_FILE", "GATEWAY_STICKY_USERS",
)  # fmt: skip


def status_listen(env: Mapping[str, str]) -> str | None:
    """127.0.0.1:$GATEWAY_STATUS_PORT (the kong_* metrics), None when unset."""
    port = str(env.get("GATEWAY_STATUS_PORT") or "").strip()
    if not port:
        return None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"GATEWAY_STATUS_PORT must be a TCP port number, got {port!r}.")
    return f"127.0.0.1:{port}"


def lua_module_check() -> None:
    missing = [m for m in LUA_MODULES if not (MODULES_DIR / m).exists()]
    if missing:
        raise RuntimeError(
            f"nginx's Lua module is not installed ({', '.join(missing)} missing from "
            f"{MODULES_DIR}). Run scripts/bootstrap.sh or: "
            "apt-get install -y libnginx-mod-http-lua libpcre3 lua-cjson"
        )


def write_gateway_files(run_dir: Path, env: Mapping[str, str]) -> Path:
    """Render run_dir/gateway/kong.yml, nginx.conf and gateway.json; return nginx.conf's path.

    Consumers come from the credentials store ($AUTH_CREDENTIALS_FILE, else
    run_dir/auth/credentials.json); without one every protected route answers 401.
    """
    env = {**env, "AUTH_CREDENTIALS_FILE": str(credentials_path(env, Path(run_dir)))}
    text = render_from_env(env)  # a bad P_VALUE fails here, before anything is written
    prefix = gateway_dir(run_dir)
    for sub in ("logs", "temp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    kong_yml = prefix / "kong.yml"
    write_atomically(kong_yml, text)
    conf = write_nginx_files(
        yaml.safe_load(kong_yml.read_text(encoding="utf-8")),
        prefix,
        listen=gateway_listen(env),
        source=str(kong_yml),
        client_timeout=float(env.get("GATEWAY_CLIENT_TIMEOUT") or 60),
        status_listen=status_listen(env),
    )
    settings = {name: str(env[name]) for name in SETTINGS if env.get(name) not in (None, "")}
    write_atomically(prefix / "settings.json", json.dumps(settings, indent=1) + "\n")
    return conf


def write_nginx_files(config: Mapping, prefix: Path, *, listen: str, **options) -> Path:
    """nginx.conf and the Lua table (gateway.json, 0600: it holds keys) for a parsed kong.yml
    under `prefix`; `options` go to generate_nginx_conf. Returns nginx.conf's path."""
    conf = prefix / "nginx.conf"
    text = generate_nginx_conf(config, listen=listen, prefix=prefix, **options)
    table = lua_config_json(config, list(route_groups(config).values()))
    write_atomically(prefix / LUA_CONFIG_NAME, table)
    write_atomically(conf, text, mode=0o644)
    return conf


def saved_settings(run_dir: Path) -> dict[str, str]:
    """The settings the running gateway was rendered with ({} before its first start)."""
    try:
        return json.loads((gateway_dir(run_dir) / "settings.json").read_text())
    except FileNotFoundError:
        return {}


def nginx_argv(run_dir: Path) -> list[str]:
    """The argv running nginx in the foreground on the files write_gateway_files() wrote."""
    prefix = gateway_dir(run_dir)
    # -e keeps nginx from opening the packaged /var/log/nginx/error.log before reading the conf.
    error_log = str(prefix / "logs" / "error.log")
    return [nginx_binary(), "-p", f"{prefix}/", "-c", str(prefix / "nginx.conf"), "-e", error_log]


def prepare_gateway(run_dir: Path, env: Mapping[str, str]) -> list[str]:
    """Validate P_VALUE (ValueError), render kong.yml into run_dir/gateway/, generate nginx.conf
    from it, check it with `nginx -t`, and return the argv running nginx in the foreground."""
    lua_module_check()
    conf = write_gateway_files(run_dir, env)
    base = nginx_argv(run_dir)
    result = subprocess.run([*base, "-t", "-q"], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"nginx rejected {conf}:\n{result.stderr.strip()}")
    return base  # the conf itself says `daemon off;`


def reload_gateway(run_dir: Path, env: Mapping[str, str], timeout: float = 10.0) -> None:
    """Re-render (the saved settings, overridden by `env`'s, and the credentials store as it
    is now) and make the running nginx switch over without dropping requests.

    Returns once the old workers are gone, i.e. every new connection gets the new config.
    """
    env = {**saved_settings(run_dir), **{k: v for k, v in env.items() if k in SETTINGS and v}}
    argv = prepare_gateway(run_dir, env)
    master = int((gateway_dir(run_dir) / "nginx.pid").read_text().strip())
    old_workers = _children(master)
    subprocess.run([*argv, "-s", "reload"], check=True, capture_output=True, timeout=30)
    # `-s reload` only signals; old workers keep accepting until the master retires them.
    deadline = time.monotonic() + timeout
    while old_workers & _children(master):
        if time.monotonic() > deadline:
            raise RuntimeError(f"nginx (pid {master}) still runs old workers after {timeout}s")
        time.sleep(0.02)


def _children(pid: int) -> set[int]:
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            # Field 4 is the parent pid; split after the ")" closing the command name.
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                children.add(int(stat.parent.name))
    return children


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kong.local_gateway",
        description="Render the local gateway from env (P_VALUE, GATEWAY_PORT, EDGE_V*_PORT) "
        "and the credentials store; `reload` applies it to the running gateway.",
    )
    parser.add_argument("command", choices=["render", "reload"])
    parser.add_argument("--run-dir", type=Path, default=Path(".run"))
    args = parser.parse_args(argv)
    try:
        if args.command == "reload":
            reload_gateway(args.run_dir, os.environ)
        else:
            print(" ".join(prepare_gateway(args.run_dir, os.environ)))
    except (ValueError, RuntimeError, subprocess.CalledProcessError) as error:
        print(f"local gateway: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
