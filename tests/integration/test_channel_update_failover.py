"""`channel submit-update` broadcasts to the ordering nodes in turn (app/channel_update.py), over
real gRPC with mutual TLS and the network folder's own certificates: a node answering
SERVICE_UNAVAILABLE (retired, restarting, overloaded) is passed over, any other refusal ends the
submission at once, so a refused update is never shopped around the other nodes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager

import grpc
import pytest
from fabric_protos.common import common_pb2
from fabric_protos.orderer import ab_pb2, ab_pb2_grpc
from tests.networks import free_ports

from medalliance.app.channel_update import _broadcast
from medalliance.errors import InvalidArgument, Unavailable
from medalliance.node.bootstrap import NetworkLayout, init_network
from medalliance.node.config import load_network_config

S = common_pb2.Status
NETWORK = """
name: failover
organizations:
  - name: OrdererOrg
    msp_id: OrdererMSP
    domain: example.com
    type: orderer
    orderers:
      - {{name: orderer0, host: 127.0.0.1, port: {0}, operations_port: {3}, cluster_port: {4}}}
      - {{name: orderer1, host: 127.0.0.1, port: {1}, operations_port: {5}, cluster_port: {6}}}
  - name: Org1
    msp_id: Org1MSP
    domain: org1.example.com
    type: member
    peers: [{{name: peer0, host: 127.0.0.1, port: {2}, operations_port: {7}}}]
"""


class Orderer(ab_pb2_grpc.AtomicBroadcastServicer):  # type: ignore[misc]
    """An ordering node's Broadcast answering every envelope with one status; keeps them."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.received: list[common_pb2.Envelope] = []

    def Broadcast(
        self, requests: Iterator[common_pb2.Envelope], context: grpc.ServicerContext
    ) -> Iterator[ab_pb2.BroadcastResponse]:
        for envelope in requests:
            self.received.append(envelope)
            yield ab_pb2.BroadcastResponse(status=self.status, info=f"answered {self.status}")


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> NetworkLayout:
    """A network folder (not started) with two ordering nodes on free ports."""
    directory = tmp_path_factory.mktemp("failover")
    (directory / "spec.yaml").write_text(NETWORK.format(*free_ports(8)), encoding="utf-8")
    config = load_network_config(directory / "spec.yaml")
    return init_network(config, directory / "net", now=dt.datetime.now(dt.UTC))


@contextmanager
def orderers(layout: NetworkLayout, *statuses: int) -> Iterator[list[Orderer]]:
    """The ordering nodes of `layout` listening with their own TLS certificates, requiring a
    client certificate of Org1's TLS CA, each answering with its status."""
    org = layout.config.organization("OrdererMSP")
    client_ca = next((layout.org_msp_dir("Org1MSP") / "tlscacerts").glob("*.pem")).read_bytes()
    services, servers = [], []
    try:
        for node, status in zip(org.orderers, statuses, strict=True):
            tls = layout.orderer_dir(org.msp_id, node.name) / "tls"
            credentials = grpc.ssl_server_credentials(
                [((tls / "server.key").read_bytes(), (tls / "server.crt").read_bytes())],
                root_certificates=client_ca,
                require_client_auth=True,
            )
            service = Orderer(status)
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
            ab_pb2_grpc.add_AtomicBroadcastServicer_to_server(service, server)
            server.add_secure_port(node.endpoint, credentials)
            server.start()
            services.append(service)
            servers.append(server)
        yield services
    finally:
        for server in servers:
            server.stop(None)


def envelope() -> common_pb2.Envelope:
    return common_pb2.Envelope(payload=b"config update", signature=b"signed")


def test_a_node_answering_service_unavailable_is_passed_over(layout: NetworkLayout) -> None:
    with orderers(layout, S.SERVICE_UNAVAILABLE, S.SUCCESS) as (retired, serving):
        _broadcast(layout, "Org1", envelope())
    assert retired.received == [envelope()]
    assert serving.received == [envelope()]


def test_a_refused_update_is_not_tried_on_another_node(layout: NetworkLayout) -> None:
    """Hostile member: an update the first node refuses (BAD_REQUEST) is not probed elsewhere."""
    with (
        orderers(layout, S.BAD_REQUEST, S.SUCCESS) as (refusing, other),
        pytest.raises(InvalidArgument, match=r"orderer0\.example\.com: BAD_REQUEST"),
    ):
        _broadcast(layout, "Org1", envelope())
    assert refusing.received == [envelope()]
    assert other.received == []


def test_when_no_node_takes_the_update_each_ones_reason_is_said(layout: NetworkLayout) -> None:
    with (
        orderers(layout, S.SERVICE_UNAVAILABLE, S.SERVICE_UNAVAILABLE) as services,
        pytest.raises(Unavailable, match="no ordering node took the update") as raised,
    ):
        _broadcast(layout, "Org1", envelope())
    message = str(raised.value)
    assert "orderer0.example.com: SERVICE_UNAVAILABLE (answered 503)" in message
    assert "orderer1.example.com: SERVICE_UNAVAILABLE (answered 503)" in message
    assert all(service.received == [envelope()] for service in services)
