"""Where an ordering node dials a consenter: the consenter mapping's endpoint, or the cluster
port when the mapping (a channel made before cluster ports) names the client port."""

from __future__ import annotations

import pytest

from medalliance.node.config import NodeConfig
from medalliance.node.material import consensus_endpoint

NODE = NodeConfig(name="orderer1", host="10.0.0.7", port=7050, cluster_port=7060)


@pytest.mark.parametrize(
    ("mapped", "node", "dialled"),
    [
        pytest.param("10.0.0.7:7060", NODE, "10.0.0.7:7060", id="a mapping naming the cluster port is dialled as it is"),
        pytest.param("10.0.0.7:7050", NODE, "10.0.0.7:7060", id="a mapping naming the client port is dialled at the cluster port"),
        pytest.param("10.0.0.9:7050", NODE, "10.0.0.9:7050", id="a mapping naming another address is dialled as it is"),
        pytest.param("10.0.0.7:7050", None, "10.0.0.7:7050", id="a consenter the network folder does not know is dialled as mapped"),
    ],
)  # fmt: skip
def test_a_consenter_is_dialled_at_its_cluster_port(
    mapped: str, node: NodeConfig | None, dialled: str
) -> None:
    assert consensus_endpoint(mapped, node) == dialled
