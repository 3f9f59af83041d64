"""Config updates take effect only with a majority of the channel's organisation admins."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from fabric_protos.common import configtx_pb2
from tests.conftest import NOW, Org, make_org
from tests.unit.ledger.test_channel_config import definition

from medalliance.errors import InvalidArgument, PermissionDenied
from medalliance.ledger.channel_config import ChannelConfig, build_config, genesis_block
from medalliance.ledger.commit_certificate import Consenter
from medalliance.ledger.config_update import (
    apply_update,
    propose_update,
    sign_update,
    update_envelope,
)

MSPS = ("RegMSP", "SAMSP", "TAMSP", "TBMSP", "OrdMSP")


@pytest.fixture(scope="module")
def orgs() -> dict[str, Org]:
    return {m: make_org(m) for m in MSPS}


@pytest.fixture(scope="module")
def current(orgs: dict[str, Org]) -> ChannelConfig:
    orderer = orgs["OrdMSP"].signer("orderer0", ou="orderer")
    consenter = Consenter(1, "orderer0", "127.0.0.1", 7050, "OrdMSP", orderer.serialized_identity)
    defn = replace(definition(orgs), consenter_set=(consenter,))
    return ChannelConfig.from_block(genesis_block(defn, timestamp_ms=1_764_331_200_000))


def without_sa(current: ChannelConfig) -> configtx_pb2.ConfigGroup:
    """The channel group with SecondaryA (SAMSP) removed from the application group."""
    defn = current.definition()
    apps = tuple(o for o in defn.application_orgs if o.msp_id != "SAMSP")
    return build_config(replace(defn, application_orgs=apps)).channel_group


def signed_by(orgs: dict[str, Org], update: bytes, *msp_ids: str, role: str = "admin"):  # type: ignore[no-untyped-def]
    signers = [orgs[m].signer("Admin" if role == "admin" else "User1", ou=role) for m in msp_ids]  # type: ignore[arg-type]
    return update_envelope(update, [sign_update(update, s, os.urandom(24)) for s in signers])


# /Channel/Admins = MAJORITY of {Application, Orderer}: both groups' MAJORITY Admins, i.e.
# 3 of the 4 application organisations and both ordering organisations (OrdMSP, TAMSP).
MAJORITY = ("RegMSP", "TAMSP", "TBMSP", "OrdMSP")


def test_a_majority_of_admins_removes_an_organisation(
    orgs: dict[str, Org], current: ChannelConfig
) -> None:
    update = propose_update(current, without_sa(current))
    config = apply_update(current, signed_by(orgs, update, *MAJORITY), at=NOW)
    assert config.sequence == 1
    updated = ChannelConfig.from_config(config, "alliance")
    assert "SAMSP" not in updated.application_msp_ids
    assert "SAMSP" not in updated.msps.msp_ids  # its certificates are refused from now on
    assert updated.consenter_set == current.consenter_set


@pytest.mark.parametrize(
    ("signers", "role", "named"),
    [
        (("RegMSP", "TBMSP", "OrdMSP"), "admin", "OrdMSP, RegMSP, TBMSP"),
        (("RegMSP", "TAMSP", "TBMSP"), "admin", "RegMSP, TAMSP, TBMSP"),
        (MAJORITY, "client", "no organisation"),
    ],
    ids=["two application admins", "no ordering organisation's admin", "clients, not admins"],
)
def test_fewer_than_a_majority_of_admins_changes_nothing(
    orgs: dict[str, Org], current: ChannelConfig, signers: tuple[str, ...], role: str, named: str
) -> None:
    update = propose_update(current, without_sa(current))
    with pytest.raises(PermissionDenied) as refused:
        apply_update(current, signed_by(orgs, update, *signers, role=role), at=NOW)
    assert str(refused.value) == (
        f"the config update is signed by admins of {named}; /Channel/Admins needs a majority "
        "of the channel's organisations"
    )


def test_signatures_bind_the_update(orgs: dict[str, Org], current: ChannelConfig) -> None:
    update = propose_update(current, without_sa(current))
    envelope = signed_by(orgs, update, *MAJORITY)
    other = propose_update(current, build_config(current.definition()).channel_group)
    envelope.config_update = other  # the signed update swapped for another
    with pytest.raises(PermissionDenied):
        apply_update(current, envelope, at=NOW)


def test_an_update_for_an_older_configuration_is_stale(
    orgs: dict[str, Org], current: ChannelConfig
) -> None:
    update = propose_update(current, without_sa(current))
    config = apply_update(current, signed_by(orgs, update, *MAJORITY), at=NOW)
    newer = ChannelConfig.from_config(config, "alliance")
    with pytest.raises(InvalidArgument, match="made for sequence 0; the channel is at 1"):
        apply_update(newer, signed_by(orgs, update, *MAJORITY), at=NOW)


def test_an_update_that_leaves_no_consenters_is_refused(
    orgs: dict[str, Org], current: ChannelConfig
) -> None:
    group = build_config(replace(current.definition(), consenter_set=())).channel_group
    update = propose_update(current, group)
    with pytest.raises(InvalidArgument, match="names no consenters"):
        apply_update(current, signed_by(orgs, update, *MAJORITY), at=NOW)


def test_garbage_is_not_an_update(current: ChannelConfig) -> None:
    envelope = configtx_pb2.ConfigUpdateEnvelope(config_update=b"\xff\x00garbage")
    with pytest.raises(InvalidArgument, match="names the sequence it produces"):
        apply_update(current, envelope, at=NOW)
