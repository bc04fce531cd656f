"""`python -m bench.queue_types`: what a quorum RPC queue costs one call, against classic.

    .venv/bin/python -m bench.queue_types [--calls 2000] [--rounds 2]

The broker leg of an RPC alone, shaped like ours: a non-persistent request to a durable
queue of each type, a consumer (another connection, prefetch 10) that answers by direct
reply-to and acks, one call at a time. Rounds run classic quorum quorum classic, so drift of
the shared machine hits both alike; prints p50 / p99 per round, the medians and the ratio.
Its own queues (`bench-rt-<type>-<pid>`) are deleted at the end. Never fails on a time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

import amqp

from bench.budget_report import percentile

BROKER = os.environ.get("BENCH_RABBIT_HOST", "127.0.0.1") + ":5672"
REPLY_TO = "amq.rabbitmq.reply-to"
BODY = b"x" * 300  # about a POST /users request with its headers


def _serve(queue: str, kind: str, ready: threading.Event, stop: threading.Event) -> None:
    connection = amqp.Connection(BROKER)
    connection.connect()
    channel = connection.channel()
    channel.queue_declare(queue, durable=True, auto_delete=False, arguments={"x-queue-type": kind})
    channel.basic_qos(0, 10, False)

    def answer(message: amqp.Message) -> None:
        reply = amqp.Message(message.body)
        channel.basic_publish(reply, exchange="", routing_key=message.properties["reply_to"])
        channel.basic_ack(message.delivery_tag)

    channel.basic_consume(queue, callback=answer)
    ready.set()
    while not stop.is_set():
        try:
            connection.drain_events(timeout=0.2)
        except TimeoutError:
            continue
    connection.close()


def round_trips(kind: str, calls: int) -> list[float]:
    """Milliseconds of each of `calls` sequential calls through a `kind` queue."""
    queue = f"bench-rt-{kind}-{os.getpid()}"
    ready, stop = threading.Event(), threading.Event()
    server = threading.Thread(target=_serve, args=(queue, kind, ready, stop), daemon=True)
    server.start()
    ready.wait(30)
    connection = amqp.Connection(BROKER)
    connection.connect()
    channel = connection.channel()
    replies: list[amqp.Message] = []
    channel.basic_consume(REPLY_TO, callback=replies.append, no_ack=True)
    times = []
    try:
        for _ in range(calls):
            started = time.perf_counter()
            request = amqp.Message(BODY, reply_to=REPLY_TO, delivery_mode=1)
            channel.basic_publish(request, exchange="", routing_key=queue)
            while not replies:
                connection.drain_events(timeout=10)
            replies.clear()
            times.append((time.perf_counter() - started) * 1000)
    finally:
        stop.set()
        server.join(10)
        channel.queue_delete(queue)  # after its consumer left: no cancel for it to handle
        connection.close()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.queue_types", description=__doc__)
    parser.add_argument("--calls", type=int, default=2000, help="per round (default 2000)")
    parser.add_argument(
        "--rounds", type=int, default=2, help="classic quorum quorum classic blocks"
    )
    args = parser.parse_args(argv)
    p50s: dict[str, list[float]] = {"classic": [], "quorum": []}
    for kind in ("classic", "quorum", "quorum", "classic") * args.rounds:
        times = round_trips(kind, args.calls)
        p50, p99 = percentile(times, 50), percentile(times, 99)
        p50s[kind].append(p50)
        print(f"  {kind:<8} {args.calls} calls  p50 {p50:.3f} ms  p99 {p99:.3f} ms", flush=True)
    classic, quorum = (statistics.median(p50s[k]) for k in ("classic", "quorum"))
    print(
        f"median p50: classic {classic:.3f} ms, quorum {quorum:.3f} ms: quorum costs "
        f"{quorum - classic:+.3f} ms per call ({quorum / classic:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
