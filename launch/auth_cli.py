"""`micro-auth`: API keys and end-user tokens in the local credentials store (SPEC §7).

After a change the running local gateway is re-rendered and reloaded; the edges re-read the
store by themselves within a second or two.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from common.auth import store
from common.auth.acl import GROUPS
from launch.credentials import credentials_file
from launch.settings import SettingsError, StackSettings
from launch.spec import ROOT

RUN_DIR = ROOT / ".run"


def stack_env() -> dict[str, str]:
    """What the stack runs with (environment over .env over defaults), the store included."""
    env = dict(StackSettings.load(dotenv=ROOT / ".env").env)
    env["AUTH_CREDENTIALS_FILE"] = str(credentials_file(env, RUN_DIR))
    return env


def reload_local_gateway(env: dict[str, str]) -> str:
    """Ask the running local gateway to re-render from the store; says what happened."""
    from kong.local_gateway import gateway_dir, reload_gateway

    if not (gateway_dir(RUN_DIR) / "nginx.pid").exists():
        return "no local gateway running (it reads the store when it starts)"
    try:
        reload_gateway(RUN_DIR, env)
    except (OSError, ValueError, RuntimeError) as error:
        return f"the local gateway did not reload: {error} (try `make gateway-reload`)"
    return "local gateway reloaded"


def _limits(args: argparse.Namespace) -> dict[str, int]:
    if args.per_second is not None:
        return {"second": args.per_second}
    if args.per_minute is not None:
        return {"minute": args.per_minute}
    return {}


def _keys_list(path: Path) -> None:
    current = store.load_store(path)
    for name, consumer in sorted(current.consumers.items()):
        limit = ", ".join(f"{n}/{w}" for w, n in consumer.limits.items()) or "no own limit"
        ids = ", ".join(k.id for k in consumer.keys)
        print(f"{name}\tgroups={','.join(consumer.groups)}\t{limit}\tkey ids: {ids}")
    for iss, issuer in sorted(current.issuers.items()):
        print(f"{issuer.consumer}\tissuer {iss} ({issuer.algorithm}): end-user tokens")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="micro-auth", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    keys = commands.add_parser("keys", help="application consumers and their API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="add a consumer; prints its new API key")
    create.add_argument("name")
    create.add_argument("--groups", required=True, help=f"comma-separated, of: {','.join(GROUPS)}")
    limit = create.add_mutually_exclusive_group()
    limit.add_argument("--per-second", type=int, metavar="N")
    limit.add_argument("--per-minute", type=int, metavar="N")
    key_commands.add_parser("list", help="consumers, groups and limits (never the keys)")
    revoke = key_commands.add_parser("revoke", help="remove a consumer and its keys")
    revoke.add_argument("name")
    token = commands.add_parser("token", help="print an end-user JWT signed by the local issuer")
    token.add_argument("--user", required=True, metavar="USERID")
    token.add_argument("--ttl", type=int, default=3600, metavar="SECONDS")
    return top


def run(args: argparse.Namespace, env: dict[str, str]) -> int:
    path = Path(env["AUTH_CREDENTIALS_FILE"])
    if args.command == "token":
        print(store.mint_token(path, args.user, args.ttl))
        return 0
    if args.keys_command == "list":
        _keys_list(path)
        return 0
    if args.keys_command == "create":
        groups = args.groups.split(",")
        print(store.create_consumer(path, args.name, groups, _limits(args)))
    elif not store.revoke_consumer(path, args.name):
        print(f"micro-auth: no consumer {args.name!r}", file=sys.stderr)
        return 1
    print(f"micro-auth: {reload_local_gateway(env)}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        env = stack_env()
        return run(args, env)
    except FileNotFoundError as error:
        print(f"micro-auth: {error.filename} missing; `make run` creates it", file=sys.stderr)
    except (store.StoreError, SettingsError) as error:
        print(f"micro-auth: {error}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
