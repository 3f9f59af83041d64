"""`state_database` in the network config: which world-state database each peer opens."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.unit.node.test_config import BASE, config_with, org, write

from medalliance.errors import ConfigError
from medalliance.node.config import NetworkConfig, load_network_config

PG = "postgresql://peer@db.example.com/alliance"
OTHER = "postgresql://peer@other.example.com/alliance"


def peer_of(config: NetworkConfig, org_name: str) -> Any:
    return config.organization(org_name).peers[0]


@pytest.mark.parametrize(
    ("edit", "hosp_a", "hosp_b"),
    [
        pytest.param(lambda d: None, None, None, id="without the field every peer keeps SQLite"),
        pytest.param(lambda d: d.update(state_database=PG), PG, PG, id="the network default applies to every peer"),
        pytest.param(lambda d: (d.update(state_database=PG), org(d, "HospB")["peers"][0].update(state_database=OTHER)), PG, OTHER, id="a peer's own URL overrides the default"),
        pytest.param(lambda d: (d.update(state_database=PG), org(d, "HospB")["peers"][0].update(state_database="sqlite")), PG, None, id="a peer may keep SQLite under a PostgreSQL default"),
        pytest.param(lambda d: d.update(state_database="sqlite"), None, None, id="sqlite names the default"),
    ],
)  # fmt: skip
def test_each_peer_gets_its_world_state_database(
    edit: Callable[[dict[str, Any]], object], hosp_a: str | None, hosp_b: str | None
) -> None:
    config = NetworkConfig.model_validate(config_with(edit))
    found = [config.state_database_for(peer_of(config, name)) for name in ("HospA", "HospB")]
    assert [url.conninfo if url else None for url in found] == [hosp_a, hosp_b]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("/var/lib/state.db", "state_database is a postgresql://", id="a SQLite file path is refused: a state is one file per channel"),
        pytest.param("mysql://u@h/db", "scheme 'mysql' is not supported", id="another database is refused"),
        pytest.param("postgresql://u:pw@h", "names no database", id="a URL without a database is refused"),
        pytest.param("", "database URL is empty", id="an empty URL is refused"),
    ],
)  # fmt: skip
def test_a_bad_state_database_is_refused_without_showing_a_password(
    tmp_path: Path, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_network_config(write(tmp_path, {**BASE, "state_database": value}))
    assert message in str(raised.value)
    assert "state_database" in str(raised.value)
    assert ":pw@" not in str(raised.value)


def test_the_url_stays_out_of_the_configs_repr() -> None:
    data = config_with(lambda d: d.update(state_database="postgresql://peer:s3cret@db/alliance"))
    org(data, "HospA")["peers"][0]["state_database"] = "postgresql://peer:s3cret@db/other"
    assert "s3cret" not in repr(NetworkConfig.model_validate(data))
