"""A bounded load generator for rollout drills: `python -m rollout.load --url URL`. Creates
`--users` users, then reads them at random (`GET /users/{userId}`) at about `--rate` requests
per second until `--duration` ends or Ctrl-C, and prints the outcome per generation."""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence

import requests


def new_user(index: int, tag: str) -> dict:
    return {
        "emails": [f"load-{tag}-{index}@example.com"],
        "deliveryAddress": {
            "street": f"{index} Main St",
            "city": "Springfield",
            "state": "IL",
            "postalCode": "62701",
            "country": "US",
        },
        "firstName": "Load",
        "lastName": f"User{index}",
        "phoneNumber": "5551234567",
    }


def create_users(url: str, count: int, headers: dict[str, str]) -> list[str]:
    tag = f"{time.time():.0f}"
    with requests.Session() as http:
        ids = []
        for index in range(count):
            response = http.post(f"{url}/users/", json=new_user(index, tag), headers=headers)
            response.raise_for_status()
            ids.append(response.json()["userId"])
        return ids


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rollout.load", description=__doc__)
    parser.add_argument("--url", default="http://localhost:8000")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50, help="requests per second (50)")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--duration", type=float, default=600, help="seconds (600)")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    args = parser.parse_args(argv)
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    ids = create_users(args.url, args.users, headers)
    outcomes: Counter[str] = Counter()
    lock, stop = threading.Lock(), threading.Event()
    interval = args.threads / args.rate

    def client(seed: int) -> None:
        draw = random.Random(seed).choice
        with requests.Session() as http:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    response = http.get(f"{args.url}/users/{draw(ids)}", headers=headers)
                    key = f"{response.headers.get('X-Users-Version', '-')} {response.status_code}"
                except requests.RequestException as error:
                    key = f"error {type(error).__name__}"
                with lock:
                    outcomes[key] += 1
                stop.wait(max(0.0, interval - (time.monotonic() - started)))

    threads = [
        threading.Thread(target=client, args=(n,), daemon=True) for n in range(args.threads)
    ]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + args.duration
        while time.monotonic() < deadline:
            time.sleep(min(10.0, max(0.0, deadline - time.monotonic())))
            with lock:
                print(dict(sorted(outcomes.items())), flush=True)
    except KeyboardInterrupt:
        pass
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    print("total", dict(sorted(outcomes.items())), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
