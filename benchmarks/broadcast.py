"""CPU per envelope of a peer's Broadcast calls (node/broadcast_stream.py), over real gRPC.

Run: `.venv/bin/python benchmarks/broadcast.py [--envelopes 20000] [--senders 64] [--rounds 3]`.
The gateway peer sends every submitted transaction on a long-lived Broadcast call to an
ordering node and waits for its answer. Here `--senders` tasks send 3 KB envelopes through one
`BroadcastStream` to an ordering-node stand-in (a separate process answering SUCCESS to each
envelope, on localhost without TLS); each process's CPU (all its threads, gRPC's included) is
divided by the envelopes answered. Prints µs per envelope per round, min and median, for this
process and the stand-in. Asserts nothing. Under `PYTHONPATH` of a tree from before
`node/broadcast_stream.py` it measures that tree's one shared stream, `_BroadcastStream` (the
envelope parsed, as its `OrdererLink.broadcast` did).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.orderer import ab_pb2

SERVER = """
import asyncio, sys, grpc
from fabric_protos.common import common_pb2
from fabric_protos.orderer import ab_pb2, ab_pb2_grpc

class Orderer(ab_pb2_grpc.AtomicBroadcastServicer):
    async def Broadcast(self, requests, context):
        async for _ in requests:
            yield ab_pb2.BroadcastResponse(status=common_pb2.SUCCESS)

async def main():
    server = grpc.aio.server()
    ab_pb2_grpc.add_AtomicBroadcastServicer_to_server(Orderer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()

asyncio.run(main())
"""

Send = Callable[[bytes], Awaitable[ab_pb2.BroadcastResponse]]


def sender(channel: grpc.aio.Channel) -> Send:
    try:
        from medalliance.node.broadcast_stream import BroadcastStream, raw_broadcast
    except ImportError:  # the tree measured predates the module
        from fabric_protos.orderer import ab_pb2_grpc

        from medalliance.node.orderer_link import _BroadcastStream  # type: ignore[attr-defined]

        old = _BroadcastStream(ab_pb2_grpc.AtomicBroadcastStub(channel))
        return lambda data: old.send(common_pb2.Envelope.FromString(data), 5.0)  # type: ignore[no-any-return]
    return BroadcastStream(raw_broadcast(channel), 5.0).send


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` (all its threads)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_round(send: Send, envelopes: int, senders: int, server: int) -> tuple[float, float]:
    data = common_pb2.Envelope(payload=b"p" * 3000, signature=b"s" * 72).SerializeToString()

    async def run(count: int) -> None:
        for _ in range(count):
            answer = await send(data)
            assert answer.status == common_pb2.SUCCESS

    await asyncio.gather(*(run(envelopes // senders) for _ in range(senders // 8)))  # warm
    started, server_started = time.process_time(), process_cpu_s(server)
    await asyncio.gather(*(run(envelopes // senders) for _ in range(senders)))
    sent = envelopes // senders * senders
    return (
        (time.process_time() - started) / sent * 1e6,
        (process_cpu_s(server) - server_started) / sent * 1e6,
    )


async def main(envelopes: int, senders: int, rounds: int) -> None:
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            send = sender(channel)
            results = [await one_round(send, envelopes, senders, server.pid) for _ in range(rounds)]
        for name, values in (
            ("sender", [r[0] for r in results]),
            ("node", [r[1] for r in results]),
        ):
            print(
                f"µs CPU per envelope, {name}: min {min(values):.1f}, "
                f"median {statistics.median(values):.1f} over {rounds} rounds of {envelopes}"
            )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envelopes", type=int, default=20000)
    parser.add_argument("--senders", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.envelopes, args.senders, args.rounds))
