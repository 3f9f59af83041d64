"""The two processes `protocol_floor.py` measures: a gRPC server and a load-generating client.

Not meant to be run by hand: `protocol_floor.py` starts them and talks to them by lines on
stdin/stdout, so that it reads each process's CPU counters only while the measured calls run.

- `serve`: a grpc.aio server as our nodes make it (uvloop, `SERVER_OPTIONS`, TLS from
  `network/tls.py`, a client certificate asked for but not required, as a peer does) with
  generic bytes handlers, no protobuf work. The first 4 bytes of a request give the answer's
  size (and for `Deliver` the next 4 the number of messages), so one server serves every size.
  It also listens without TLS, for `--plaintext`.
- `call MODE`: warms up, prints `warm`, waits for `go`, makes the measured calls, prints
  `done <calls> <seconds>` and waits for stdin to close. Modes: `aio` (unary calls on one
  mutual-TLS grpc.aio channel on uvloop, as node-to-node calls), `sync` (unary calls from
  threads, each with its own channel made by the SDK's `sdk/gateway.py`, server TLS only, as the
  clients of `benchmarks/e2e.py`), `sync-shared` (the same threads on one channel), `bidi`
  (request → answer messages on long-lived grpc.aio streams, as Broadcast), `deliver` (messages
  pushed by the server on one stream, as a Deliver of blocks).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from functools import cache
from pathlib import Path
from typing import Any

import grpc
import uvloop

from medalliance.network.tls import CLIENT_OPTIONS, SERVER_OPTIONS, NodeTls
from medalliance.sdk.gateway import _new_channel

SERVICE = "floor.Floor"
ORG = "FloorMSP"


@cache
def payload(size: int) -> bytes:
    return b"\x5a" * size


def request(answer_bytes: int, size: int, count: int = 0) -> bytes:
    """A request of `size` bytes asking for `answer_bytes` back (`count` times for Deliver)."""
    head = answer_bytes.to_bytes(4, "big") + count.to_bytes(4, "big")
    return head + payload(max(0, size - len(head)))


def _answer_size(message: bytes) -> int:
    return int.from_bytes(message[:4], "big")


async def _unary(message: bytes, context: Any) -> bytes:
    return payload(_answer_size(message))


async def _bidi(messages: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
    async for message in messages:
        yield payload(_answer_size(message))


async def _deliver(message: bytes, context: Any) -> AsyncIterator[bytes]:
    block = payload(_answer_size(message))
    for _ in range(int.from_bytes(message[4:8], "big")):
        yield block


async def serve(tls: NodeTls) -> None:
    server = grpc.aio.server(options=SERVER_OPTIONS)
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(_unary),
            "Bidi": grpc.stream_stream_rpc_method_handler(_bidi),
            "Deliver": grpc.unary_stream_rpc_method_handler(_deliver),
        },
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port("127.0.0.1:0", tls.server_credentials(require_client_auth=False))
    plaintext = server.add_insecure_port("127.0.0.1:0")  # to tell TLS's share (`--plaintext`)
    await server.start()
    print(f"port {port} {plaintext}", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await server.stop(grace=None)


class Calls:
    """How many calls are left to make, shared by the callers (threads or tasks)."""

    def __init__(self, count: int) -> None:
        self.left = count
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True


def _handshake(run: Callable[[int], object], warmup: int, calls: int) -> None:
    """Warm up, then measure `calls` between the `go` and `done` lines."""
    run(warmup)
    print("warm", flush=True)
    sys.stdin.readline()
    began = time.perf_counter()
    run(calls)
    print(f"done {calls} {time.perf_counter() - began:.6f}", flush=True)
    sys.stdin.read()  # the caller reads our counters, then closes stdin


def call_sync(args: argparse.Namespace, tls_ca: bytes) -> None:
    endpoint = f"127.0.0.1:{args.port}"
    made = 1 if args.mode == "sync-shared" else args.concurrency
    root = None if args.plaintext else tls_ca
    owned = [_new_channel(endpoint, root, args.server_name, None, None, ()) for _ in range(made)]
    channels = [owned[i % made] for i in range(args.concurrency)]
    body = request(args.answer_bytes, args.request_bytes)

    def caller(channel: grpc.Channel, calls: Calls) -> None:
        method = channel.unary_unary(f"/{SERVICE}/Unary")
        while calls.take():
            method(body, timeout=30.0)

    def run(count: int) -> None:
        calls = Calls(count)
        threads = [threading.Thread(target=caller, args=(c, calls)) for c in channels]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    _handshake(run, args.warmup, args.calls)
    for channel in owned:
        channel.close()


async def call_aio(args: argparse.Namespace, tls: NodeTls) -> None:
    endpoint = f"127.0.0.1:{args.port}"
    channel = (
        grpc.aio.insecure_channel(endpoint, options=CLIENT_OPTIONS)
        if args.plaintext
        else tls.channel(endpoint, args.server_name, ORG)
    )
    loop = asyncio.get_running_loop()

    async def unary(calls: Calls) -> None:
        method = channel.unary_unary(f"/{SERVICE}/Unary")
        body = request(args.answer_bytes, args.request_bytes)
        while calls.take():
            await method(body, timeout=30.0)

    async def bidi(calls: Calls) -> None:
        stream = channel.stream_stream(f"/{SERVICE}/Bidi")()
        body = request(args.answer_bytes, args.request_bytes)
        while calls.take():
            await stream.write(body)
            await stream.read()
        await stream.done_writing()

    async def deliver(count: int) -> None:
        stream = channel.unary_stream(f"/{SERVICE}/Deliver")
        async for _ in stream(request(args.block_bytes, args.request_bytes, count)):
            pass

    async def run(count: int) -> None:
        if args.mode == "deliver":
            await deliver(count)
            return
        calls = Calls(count)
        caller = unary if args.mode == "aio" else bidi
        await asyncio.gather(*(caller(calls) for _ in range(args.concurrency)))

    # The stdin handshake blocks, so it runs in a thread while the loop makes the calls.
    def blocking_run(count: int) -> None:
        asyncio.run_coroutine_threadsafe(run(count), loop).result()

    await asyncio.to_thread(_handshake, blocking_run, args.warmup, args.calls)
    await channel.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=("serve", "call"))
    parser.add_argument(
        "--mode", choices=("aio", "sync", "sync-shared", "bidi", "deliver"), default="aio"
    )
    parser.add_argument("--tls-dir", type=Path, required=True, help="a node's tls/ folder")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--server-name", default="")
    parser.add_argument("--plaintext", action="store_true", help="no TLS")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--request-bytes", type=int, default=3500)
    parser.add_argument("--answer-bytes", type=int, default=2000)
    parser.add_argument("--block-bytes", type=int, default=70_000)
    args = parser.parse_args()
    tls_ca = (args.tls_dir / "ca.crt").read_bytes()
    tls = NodeTls.load(args.tls_dir, {ORG: tls_ca})
    if args.role == "serve":
        uvloop.run(serve(tls))  # the loop our nodes run on (node/process.py)
    elif args.mode.startswith("sync"):
        call_sync(args, tls_ca)
    else:
        uvloop.run(call_aio(args, tls))


if __name__ == "__main__":
    main()
