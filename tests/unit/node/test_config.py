"""The network config file: defaults from the paper's roles, and validation that says what to fix."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medalliance.errors import ConfigError, InvalidArgument
from medalliance.node.config import NetworkConfig, load_network_config

DEMO = Path(__file__).resolve().parents[3] / "networks" / "demo-alliance.yaml"

BASE: dict[str, Any] = {
    "name": "test-net",
    "organizations": [
        {"name": "City", "msp_id": "CityMSP", "domain": "city.example.com", "type": "regulator",
         "peers": [{"name": "peer0", "port": 7051}]},
        {"name": "District", "msp_id": "DistrictMSP", "domain": "district.example.com",
         "type": "regulator", "parent": "City", "peers": [{"name": "peer0", "port": 7151}]},
        {"name": "HospA", "msp_id": "HospAMSP", "domain": "hospa.example.com", "type": "tertiary",
         "regulator": "District", "peers": [{"name": "peer0", "port": 7251}],
         "orderers": [{"name": "orderer0", "port": 7050}]},
        {"name": "HospB", "msp_id": "HospBMSP", "domain": "hospb.example.com", "type": "secondary",
         "regulator": "District", "peers": [{"name": "peer0", "port": 7351}],
         "users": [{"name": "Doc1", "role": "doctor"}]},
    ],
    "channels": [
        {"name": "alliance",
         "contracts": [{"name": "visit", "package": "medalliance.alliance.visit:VisitContract"}]},
    ],
}  # fmt: skip


def config_with(edit: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    edit(data)
    return data


def org(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(o for o in data["organizations"] if o["name"] == name)


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "network.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


# --- defaults --------------------------------------------------------------------------------


def test_the_demo_alliance_loads_with_the_papers_roles() -> None:
    config = load_network_config(DEMO)
    types = {o.name: o.type for o in config.organizations}
    assert types == {
        "CityHC": "regulator",
        "DistrictHC": "regulator",
        "TertiaryHospitalA": "tertiary",
        "TertiaryHospitalB": "tertiary",
        "SecondaryHospitalA": "secondary",
        "SecondaryHospitalB": "secondary",
    }
    assert config.organization("DistrictHC").parent == "CityHC"
    # Tertiary hospitals validate; the commissions' audit peers endorse too: every write needs
    # one commission and one tertiary hospital (either of each, so one peer down stops
    # nothing); secondary hospitals never endorse.
    assert {o.name for o in config.organizations if o.endorsing} == {
        "CityHC",
        "DistrictHC",
        "TertiaryHospitalA",
        "TertiaryHospitalB",
    }
    assert {o.name for o in config.orderer_organizations()} == {
        "CityHC",
        "DistrictHC",
        "TertiaryHospitalA",
        "TertiaryHospitalB",
    }
    (alliance,) = config.channels
    assert len(config.members(alliance)) == 6
    assert alliance.contracts[0].package == "medalliance.alliance.visit:VisitContract"
    roles = {u.role for o in config.organizations for u in o.users}
    assert {"doctor", "reviewer", "auditor", "clerk"} <= roles


@pytest.mark.parametrize(
    ("org_type", "explicit", "expected"),
    [
        pytest.param("tertiary", None, True, id="tertiary hospitals endorse by default"),
        pytest.param("secondary", None, False, id="secondary hospitals do not endorse by default"),
        pytest.param("regulator", None, False, id="regulators run audit peers that do not endorse"),
        pytest.param("secondary", True, True, id="an explicit endorsing flag wins"),
        pytest.param("tertiary", False, False, id="a tertiary hospital may opt out"),
    ],
)
def test_endorsing_defaults_follow_the_organisation_type(
    org_type: str, explicit: bool | None, expected: bool
) -> None:
    def edit(data: dict[str, Any]) -> None:
        org(data, "HospB")["type"] = org_type
        if org_type == "regulator":
            del org(data, "HospB")["regulator"]
        if explicit is not None:
            org(data, "HospB")["endorsing"] = explicit

    config = NetworkConfig.model_validate(config_with(edit))
    assert config.organization("HospB").endorsing is expected


def test_every_organisation_gets_an_admin_and_a_client_user() -> None:
    config = NetworkConfig.model_validate(BASE)
    users = {u.name: u for u in config.organization("HospB").all_users}
    assert set(users) == {"Admin", "User1", "Doc1"}
    assert users["Admin"].admin
    assert not users["User1"].admin
    assert users["Doc1"].role == "doctor"


def test_channel_members_default_to_every_peer_organisation() -> None:
    config = NetworkConfig.model_validate(BASE)
    names = [o.name for o in config.members(config.channels[0])]
    assert names == ["City", "District", "HospA", "HospB"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(lambda d: None, "OutOf(3, 'CityMSP.peer', 'DistrictMSP.peer', 'HospAMSP.peer', 'HospBMSP.peer')", id="a majority of member peers when fewer than two endorse"),
        pytest.param(lambda d: org(d, "HospB").update(endorsing=True), "OutOf(2, 'HospAMSP.peer', 'HospBMSP.peer')", id="two endorsing members' peers by default"),
        pytest.param(lambda d: [org(d, n).update(endorsing=True) for n in ("District", "HospB")], "AND(OutOf(1, 'DistrictMSP.peer'), OutOf(1, 'HospAMSP.peer', 'HospBMSP.peer'))", id="a commission's peer and a hospital's when both endorse"),
        pytest.param(lambda d: org(d, "HospA").update(endorsing=False), "OutOf(3, 'CityMSP.peer', 'DistrictMSP.peer', 'HospAMSP.peer', 'HospBMSP.peer')", id="a majority of member peers when none endorses"),
        pytest.param(lambda d: d["channels"][0]["contracts"][0].update(endorsement_policy="AND('HospAMSP.peer', 'HospBMSP.peer')"), "AND('HospAMSP.peer', 'HospBMSP.peer')", id="an explicit policy is kept verbatim"),
    ],
)  # fmt: skip
def test_the_default_endorsement_policy_follows_the_paper(
    edit: Callable[[dict[str, Any]], object], expected: str
) -> None:
    config = NetworkConfig.model_validate(config_with(edit))
    channel = config.channels[0]
    assert config.endorsement_policy(channel, channel.contracts[0]) == expected


def test_the_config_round_trips_through_its_yaml_dump(tmp_path: Path) -> None:
    config = NetworkConfig.model_validate(BASE)
    path = write(tmp_path, config.model_dump(mode="json", exclude_none=True))
    assert load_network_config(path) == config


# --- validation ------------------------------------------------------------------------------


def _drop(data: dict[str, Any], key: str) -> None:
    del data[key]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(lambda d: org(d, "HospB").update(name="HospA"), "organizations: name 'HospA' is used twice", id="two organisations share a name"),
        pytest.param(lambda d: org(d, "HospB").update(msp_id="HospAMSP"), "msp_id 'HospAMSP' is used twice", id="two organisations share an msp id"),
        pytest.param(lambda d: org(d, "HospB").update(domain="hospa.example.com"), "domain 'hospa.example.com' is used twice", id="two organisations share a domain"),
        pytest.param(lambda d: org(d, "HospB")["peers"][0].update(port=7251), "address 127.0.0.1:7251 is used by two nodes", id="two nodes share an address"),
        pytest.param(lambda d: org(d, "HospB")["peers"][0].update(port=70000), "organizations[3].peers[0].port: Input should be less than or equal to 65535", id="a port is out of range"),
        pytest.param(lambda d: org(d, "HospB")["peers"][0].update(port=0), "organizations[3].peers[0].port: Input should be greater than or equal to 1", id="port zero is refused"),
        pytest.param(lambda d: org(d, "HospB").update(peers=[{"name": "peer0", "port": 7351}, {"name": "peer0", "port": 7451}]), "organizations[3]: node name 'peer0' is used twice", id="two peers of one organisation share a name"),
        pytest.param(lambda d: org(d, "HospB").update(users=[{"name": "Doc1"}, {"name": "Doc1"}]), "organizations[3]: user name 'Doc1' is used twice", id="two users share a name"),
        pytest.param(lambda d: org(d, "HospB").update(type="clinic"), "organizations[3].type: Input should be 'regulator', 'tertiary', 'secondary', 'orderer' or 'member'", id="an unknown organisation type"),
        pytest.param(lambda d: org(d, "HospB").update(colour="red"), "organizations[3].colour: Extra inputs are not permitted", id="a misspelt key"),
        pytest.param(lambda d: _drop(org(d, "HospB"), "regulator"), "organizations[3].regulator: hospital HospB needs a supervising regulator; use one of: City, District", id="a hospital without a regulator"),
        pytest.param(lambda d: org(d, "HospB").update(regulator="Nowhere"), "organizations[3].regulator: HospB's regulator 'Nowhere' is not a regulator organisation", id="a regulator that does not exist"),
        pytest.param(lambda d: org(d, "HospB").update(regulator="HospA"), "regulator 'HospA' is not a regulator organisation", id="a hospital supervised by a hospital"),
        pytest.param(lambda d: org(d, "District").update(parent="Nowhere"), "organizations[1].parent: District's parent 'Nowhere' is not a regulator", id="a parent that does not exist"),
        pytest.param(lambda d: org(d, "HospA").update(parent="City"), "organizations[2].parent: only regulators have a parent", id="a hospital with a parent"),
        pytest.param(lambda d: org(d, "City").update(regulator="District"), "organizations[0].regulator: only hospitals have a regulator", id="a regulator with a regulator"),
        pytest.param(lambda d: org(d, "City").update(parent="District"), "the regulator hierarchy has a cycle (City -> District -> City)", id="a cycle in the regulator hierarchy"),
        pytest.param(lambda d: org(d, "City").update(parent="City"), "cycle (City -> City)", id="a regulator that is its own parent"),
        pytest.param(lambda d: org(d, "HospA").update(orderers=[]), "no organisation runs an ordering node", id="no ordering node anywhere"),
        pytest.param(lambda d: org(d, "HospB").update(peers=[]), "organizations[3].peers: HospB runs no peer", id="a hospital without a peer"),
        pytest.param(lambda d: d["organizations"].append({"name": "Ord", "msp_id": "OrdMSP", "domain": "ord.example.com", "type": "orderer", "peers": [{"name": "peer0", "port": 9051}], "orderers": [{"name": "orderer0", "port": 9050}]}), "organizations[4].peers: an orderer organisation runs no peers", id="an orderer organisation with a peer"),
        pytest.param(lambda d: d["channels"][0].update(members=["HospA", "Nowhere"]), "channels[0].members: 'Nowhere' is not a peer organisation", id="a channel member that does not exist"),
        pytest.param(lambda d: d["channels"][0].update(members=["HospA", "HospA"]), "channels[0].members: member 'HospA' is used twice", id="a channel member listed twice"),
        pytest.param(lambda d: d["channels"].append({"name": "alliance"}), "channels: name 'alliance' is used twice", id="two channels share a name"),
        pytest.param(lambda d: d["channels"][0].update(name="Alliance"), "channels[0].name: String should match pattern", id="a channel name Fabric would refuse"),
        pytest.param(lambda d: d["channels"][0]["contracts"][0].update(endorsement_policy="OR('HospAMSP.peer'"), "channels[0].contracts[0].endorsement_policy: policy \"OR('HospAMSP.peer'\": expected", id="an endorsement policy that does not parse"),
        pytest.param(lambda d: d["channels"][0]["contracts"][0].update(endorsement_policy="OR('OtherMSP.peer')"), "OtherMSP is not a member of channel alliance", id="an endorsement policy naming a non-member"),
        pytest.param(lambda d: d["channels"][0]["contracts"][0].update(package="visit"), "channels[0].contracts[0].package: String should match pattern", id="a contract package that is not module:Class"),
        pytest.param(lambda d: d["channels"][0].update(batch={"preferred_max_bytes": 4096, "absolute_max_bytes": 2048}), "channels[0].batch: preferred_max_bytes must not exceed absolute_max_bytes", id="a preferred batch size above the absolute one"),
        pytest.param(lambda d: d["channels"][0].update(policies={"Consortiums/Admins": "ANY Admins"}), "channels[0].policies.Consortiums/Admins: no such policy group", id="a policy override for a group that does not exist"),
        pytest.param(lambda d: d["channels"][0].update(policies={"Application/Admins": "OR(oops)"}), "channels[0].policies.Application/Admins: policy 'OR(oops)'", id="a policy override that does not parse"),
        pytest.param(lambda d: d.update(organizations=[]), "organizations: Tuple should have at least 1 item", id="a network without organisations"),
        pytest.param(lambda d: org(d, "HospA")["orderers"][0].update(cluster_port=7351), "address 127.0.0.1:7351 is used by two nodes", id="an ordering node's cluster port on a peer's address"),
        pytest.param(lambda d: org(d, "HospA")["orderers"][0].update(cluster_port=7050), "address 127.0.0.1:7050 is used by two nodes", id="a cluster port that is the node's own client port"),
        pytest.param(lambda d: org(d, "HospA")["orderers"][0].update(port=50000), "organizations[2].orderers[0].cluster_port: port 50000 leaves no default cluster port (port + 20000); set cluster_port", id="a client port too high for the default cluster port"),
        pytest.param(lambda d: org(d, "HospB")["peers"][0].update(cluster_port=27351), "organizations[3].peers[0].cluster_port: only ordering nodes have a cluster port", id="a cluster port on a peer"),
        pytest.param(lambda d: org(d, "HospA")["orderers"][0].update(integrity_monitor={}), "organizations[2]: orderer orderer0: integrity_monitor runs on peers only", id="an integrity monitor on an ordering node"),
        pytest.param(lambda d: org(d, "City")["peers"][0].update(integrity_monitor={"interval_s": 0.1}), "organizations[0].peers[0].integrity_monitor.interval_s: Input should be greater than or equal to 1", id="an integrity monitor asked to check ten times a second"),
    ],
)  # fmt: skip
def test_a_bad_config_is_refused_with_its_location_and_a_fix(
    tmp_path: Path, edit: Callable[[dict[str, Any]], object], message: str
) -> None:
    path = write(tmp_path, config_with(edit))
    with pytest.raises(ConfigError) as raised:
        load_network_config(path)
    text = str(raised.value)
    assert isinstance(raised.value, InvalidArgument)
    assert text.startswith(f"{path} is not a valid network config:\n")
    assert message in text


def test_every_problem_is_reported_one_per_line(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        org(data, "HospB").update(regulator="Nowhere")
        data["channels"][0].update(members=["Ghost"])

    with pytest.raises(ConfigError) as raised:
        load_network_config(write(tmp_path, config_with(edit)))
    lines = str(raised.value).splitlines()[1:]
    assert len(lines) == 2
    assert lines[0].startswith("  organizations[3].regulator:")
    assert lines[1].startswith("  channels[0].members:")


def test_valid_policy_overrides_are_accepted() -> None:
    data = config_with(
        lambda d: d["channels"][0].update(
            policies={
                "Application/Admins": "OR('CityMSP.admin')",
                "/Channel/Orderer/BlockValidation": "ANY Writers",
                "Application/HospAMSP/Endorsement": "OR('HospAMSP.peer')",
            }
        )
    )
    assert NetworkConfig.model_validate(data).channels[0].policies


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("name: [unclosed", "not valid YAML", id="text that is not YAML"),
        pytest.param("- a list", "a network config is a YAML mapping", id="a YAML list instead of a mapping"),
        pytest.param("", "a network config is a YAML mapping", id="an empty file"),
    ],
)  # fmt: skip
def test_an_unreadable_file_is_a_config_error_naming_it(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as raised:
        load_network_config(path)
    assert str(path) in str(raised.value)


def test_a_missing_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the network config"):
        load_network_config(tmp_path / "absent.yaml")


_SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=12)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from([*BASE, "type", "peers", "port", "x"]), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=200) | _DOCUMENTS.map(yaml.safe_dump))
def test_any_text_either_loads_or_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    with contextlib.suppress(ConfigError):
        load_network_config(path)


@pytest.mark.parametrize(
    ("node", "dialled", "bound", "operations_dialled", "operations_bound"),
    [
        pytest.param(
            {"name": "peer0", "host": "10.0.0.5", "port": 7051},
            "10.0.0.5:7051", "10.0.0.5:7051", "10.0.0.5:17051", "10.0.0.5:17051",
            id="without listen_host a node binds where it is dialled",
        ),
        pytest.param(
            {"name": "peer0", "host": "relay.example.org", "listen_host": "10.0.0.5",
             "port": 7051, "operations_port": 9444},
            "relay.example.org:7051", "10.0.0.5:7051", "relay.example.org:9444", "10.0.0.5:9444",
            id="listen_host moves only the binding of both endpoints",
        ),
        pytest.param(
            {"name": "peer0", "host": "10.0.0.5", "listen_host": "localhost", "port": 7051},
            "10.0.0.5:7051", "127.0.0.1:7051", "10.0.0.5:17051", "127.0.0.1:17051",
            id="a localhost listen_host binds the IPv4 loopback",
        ),
    ],
)  # fmt: skip
def test_a_node_binds_its_listen_host_and_is_dialled_at_its_host(
    node: dict[str, Any], dialled: str, bound: str, operations_dialled: str, operations_bound: str
) -> None:
    config = copy.deepcopy(BASE)
    config["organizations"][0]["peers"] = [node]
    (peer,) = NetworkConfig.model_validate(config).organization("City").peers
    assert (peer.endpoint, peer.listen_endpoint) == (dialled, bound)
    assert (peer.operations_endpoint, peer.operations_listen_endpoint) == (
        operations_dialled,
        operations_bound,
    )


@pytest.mark.parametrize(
    ("node", "dialled", "bound"),
    [
        pytest.param({"name": "orderer0", "host": "10.0.0.5", "port": 7050}, "10.0.0.5:27050", "10.0.0.5:27050", id="the default cluster port is the client port plus 20000"),
        pytest.param({"name": "orderer0", "host": "relay.example.org", "listen_host": "10.0.0.5", "port": 7050, "cluster_port": 7055}, "relay.example.org:7055", "10.0.0.5:7055", id="a set cluster port follows listen_host like the client port"),
    ],
)  # fmt: skip
def test_an_ordering_node_has_a_cluster_endpoint(
    node: dict[str, Any], dialled: str, bound: str
) -> None:
    config = copy.deepcopy(BASE)
    config["organizations"][2]["orderers"] = [node]
    (orderer,) = NetworkConfig.model_validate(config).organization("HospA").orderers
    assert (orderer.cluster_endpoint, orderer.cluster_listen_endpoint) == (dialled, bound)


def test_a_listen_host_that_is_no_address_is_refused() -> None:
    config = copy.deepcopy(BASE)
    config["organizations"][0]["peers"] = [{"name": "peer0", "listen_host": "a b", "port": 7051}]
    with pytest.raises(ValueError, match="listen_host"):
        NetworkConfig.model_validate(config)


def test_a_contracts_collections_are_checked_when_the_config_loads() -> None:
    from medalliance.node.config import ContractConfig

    entry = {"name": "assetCollection", "policy": "OR('Org1MSP.member')", "maxPeerCount": 1}
    spec = ContractConfig(name="assets", package="m:C", collections=(entry,))
    assert spec.collections_package
    with pytest.raises(ValueError, match="requiredPeerCount"):
        ContractConfig(
            name="assets", package="m:C", collections=({**entry, "requiredPeerCount": 2},)
        )
