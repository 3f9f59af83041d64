"""The regulator's recognition rules as a configuration file (YAML), checked before publishing.

A commission keeps its rules of result recognition (检查检验结果互认) in a file such as
`networks/recognition-rules.yaml`: the examination catalogue with a validity window and the lowest
recognised quality level per examination, and the quality level of each supervised hospital's
department per examination. `medalliance result publish-rules` loads it here and publishes it with
`resource.SetRecognitionRules`, which checks it again (the chain is the authority).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medalliance.alliance.recognition_rules import VALIDITY_DAYS_MAX
from medalliance.errors import InvalidArgument, NotFound

Level = Literal["A", "B", "C"]


class Examination(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    validity_days: int = Field(ge=1, le=VALIDITY_DAYS_MAX)
    min_level: Level


class RecognitionRulesFile(BaseModel):
    """`catalogue`: code -> {validity_days, min_level}; `levels`: hospital MSP id or name ->
    {code: level}."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    catalogue: dict[str, Examination] = Field(min_length=1)
    levels: dict[str, dict[str, Level]] = Field(default_factory=dict)


def load_rules(path: Path) -> RecognitionRulesFile:
    """The file's rules; `InvalidArgument` naming the field to fix, `NotFound` without a file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"no recognition rules file {path}") from None
    except yaml.YAMLError as exc:
        raise InvalidArgument(f"{path} is not YAML: {exc}") from None
    try:
        return RecognitionRulesFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidArgument(f"{path}: {where}: {first['msg']}") from None


def rules_argument(rules: RecognitionRulesFile, msp_of: dict[str, str]) -> str:
    """The contract's JSON form; hospitals named in the file by name become MSP ids."""
    catalogue = {
        code: {"validityDays": e.validity_days, "minLevel": e.min_level}
        for code, e in rules.catalogue.items()
    }
    levels = {msp_of.get(h, h): dict(graded) for h, graded in rules.levels.items()}
    return json.dumps({"catalogue": catalogue, "levels": levels}, sort_keys=True)
