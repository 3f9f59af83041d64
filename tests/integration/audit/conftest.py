"""A demo alliance whose ledger holds one full referral workflow (app/referral_demo.py): two
applications (one rejected), an agreement, an upward referral accepted and completed with a
settlement, the patient referred back down (a return), records shared and opened."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fabric_protos.common import common_pb2
from tests.networks import DEMO_ALLIANCE

from medalliance.app.alliance_network import EmbeddedAlliance
from medalliance.app.referral_demo import run_referral
from medalliance.node.config import load_network_config
from medalliance.node.embedded import EmbeddedNetwork

REGULATOR = "DistrictHCMSP"


@pytest.fixture(scope="module")
def workflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A network folder after one referral workflow; tests copy it."""
    directory = tmp_path_factory.mktemp("audit-alliance")
    with EmbeddedNetwork.open(load_network_config(DEMO_ALLIANCE), directory) as network:
        alliance = EmbeddedAlliance(network, "alliance")
        steps = run_referral(alliance, lambda step: None)
        alliance.close()
    assert all(step.ok for step in steps), [s.title for s in steps if not s.ok]
    return directory


@pytest.fixture
def alliance(workflow_template: Path, tmp_path: Path) -> Iterator[EmbeddedAlliance]:
    shutil.copytree(workflow_template, tmp_path / "net")
    with EmbeddedNetwork.open(load_network_config(DEMO_ALLIANCE), tmp_path / "net") as network:
        alliance = EmbeddedAlliance(network, "alliance")
        yield alliance
        alliance.close()


@pytest.fixture(scope="module")
def ledger_blocks(
    workflow_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[common_pb2.Block]:
    """Every committed block of the workflow's channel, as the regulator's peer holds them."""
    directory = tmp_path_factory.mktemp("audit-blocks") / "net"
    shutil.copytree(workflow_template, directory)
    with EmbeddedNetwork.open(load_network_config(DEMO_ALLIANCE), directory) as network:
        alliance = EmbeddedAlliance(network, "alliance")
        blocks = list(alliance.blocks(REGULATOR, 0, None))
        alliance.close()
    return blocks
