"""The regulator's recognition rules as a YAML file: the demo's file loads and passes the
contract's own check; a careless file is refused naming what to fix (exit 2), a missing one is
not found (exit 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.networks import REPO

from medalliance.alliance.recognition_rules import check_rules
from medalliance.app.recognition_rules_file import load_rules, rules_argument
from medalliance.errors import InvalidArgument, NotFound


def test_the_demo_rules_load_and_pass_the_contracts_check() -> None:
    rules = load_rules(REPO / "networks" / "recognition-rules.yaml")
    argument = rules_argument(rules, {"TertiaryHospitalA": "TertiaryAMSP"})
    checked = check_rules(argument)
    assert checked["catalogue"]["718-7"] == {"validityDays": 30, "minLevel": "B"}
    assert checked["levels"]["TertiaryAMSP"]["24627-2"] == "A"  # a name became its MSP id
    assert json.loads(argument)["levels"].keys() >= {"TertiaryAMSP", "TertiaryHospitalB"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("catalogue: {}\n", "catalogue: Dictionary should have at least 1 item", id="an empty catalogue is refused"),
        pytest.param('catalogue: {"718-7": {validity_days: 0, min_level: B}}\n', "catalogue.718-7.validity_days: Input should be greater than or equal to 1", id="a validity window of zero days is refused"),
        pytest.param('catalogue: {"718-7": {validity_days: 30, min_level: D}}\n', "catalogue.718-7.min_level: Input should be 'A', 'B' or 'C'", id="a level outside A B C is refused"),
        pytest.param('catalogue: {"718-7": {validity_days: 30, min_level: B, note: x}}\n', "catalogue.718-7.note: Extra inputs are not permitted", id="an unknown field is refused"),
        pytest.param("catalogue: [unclosed\n", "is not YAML", id="broken YAML is refused"),
    ],
)  # fmt: skip
def test_a_careless_rules_file_is_refused_naming_the_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidArgument) as refused:
        load_rules(path)
    assert message in str(refused.value)
    assert refused.value.status.exit_code == 2


def test_a_missing_rules_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_rules(tmp_path / "absent.yaml")
