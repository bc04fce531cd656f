"""Local gateway glue: render kong.yml, generate nginx.conf from it, hand back the nginx argv.

Used by the launch spec (launch/spec.py); `python -m kong.local_gateway reload` re-renders
a running gateway.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from common import defaults
from kong.nginx import generate_nginx_conf
from kong.render import render_from_env, write_atomically

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


def write_gateway_files(run_dir: Path, env: Mapping[str, str]) -> Path:
    """Render run_dir/gateway/kong.yml and nginx.conf; return the nginx.conf path."""
    text = render_from_env(env)  # a bad P_VALUE fails here, before anything is written
    prefix = gateway_dir(run_dir)
    for sub in ("logs", "temp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    kong_yml = prefix / "kong.yml"
    write_atomically(kong_yml, text)
    config = yaml.safe_load(kong_yml.read_text(encoding="utf-8"))
    conf = prefix / "nginx.conf"
    text = generate_nginx_conf(
        config,
        listen=gateway_listen(env),
        prefix=prefix,
        source=str(kong_yml),
        client_timeout=float(env.get("GATEWAY_CLIENT_TIMEOUT") or 60),
    )
    write_atomically(conf, text)
    return conf


def nginx_argv(run_dir: Path) -> list[str]:
    """The argv running nginx in the foreground on the files write_gateway_files() wrote."""
    prefix = gateway_dir(run_dir)
    # -e keeps nginx from opening the packaged /var/log/nginx/error.log before reading the conf.
    error_log = str(prefix / "logs" / "error.log")
    return [nginx_binary(), "-p", f"{prefix}/", "-c", str(prefix / "nginx.conf"), "-e", error_log]


def prepare_gateway(run_dir: Path, env: Mapping[str, str]) -> list[str]:
    """Validate P_VALUE (ValueError), render kong.yml into run_dir/gateway/, generate nginx.conf
    from it, check it with `nginx -t`, and return the argv running nginx in the foreground."""
    conf = write_gateway_files(run_dir, env)
    base = nginx_argv(run_dir)
    result = subprocess.run([*base, "-t", "-q"], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"nginx rejected {conf}:\n{result.stderr.strip()}")
    return base  # the conf itself says `daemon off;`


def reload_gateway(run_dir: Path, env: Mapping[str, str], timeout: float = 10.0) -> None:
    """Re-render from env and make the running nginx switch over without dropping requests.

    Returns once the old workers are gone, i.e. every new connection gets the new config.
    """
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
        description="Render the local gateway from env (P_VALUE, GATEWAY_PORT, EDGE_V*_PORT).",
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
