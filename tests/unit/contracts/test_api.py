"""Calling convention: Fabric's argument list mapped onto typed contract functions."""

from __future__ import annotations

import pytest
from tests.conftest import Org
from tests.unit.contracts.fakes import DictState, tx_context

from medalliance.contracts.api import Context, Contract, FunctionInfo, transaction
from medalliance.contracts.simulation import simulate
from medalliance.identity.msp import MspManager


class Shapes(Contract):
    name = "shapes"

    @transaction(evaluate=True)
    def Text(self, ctx: Context, value: str) -> str:
        return value.upper()

    @transaction(evaluate=True)
    def Json(self, ctx: Context) -> dict[str, object]:
        return {"b": [1, 2], "a": "é"}

    @transaction(evaluate=True)
    def Nothing(self, ctx: Context) -> None:
        return None

    @transaction
    def Announce(self, ctx: Context, raw: bytes) -> bytes:
        ctx.stub.put_state("k", raw)
        ctx.stub.set_event("Announced", raw)
        return raw

    def helper(self) -> None:
        """Not a transaction: not callable."""


def test_functions_lists_transactions_with_their_parameters() -> None:
    functions = Shapes.functions()
    assert sorted(functions) == ["Announce", "Json", "Nothing", "Text"]
    assert functions["Text"] == FunctionInfo("Text", True, ("value",), (False,))
    assert functions["Announce"] == FunctionInfo("Announce", False, ("raw",), (True,))


@pytest.mark.parametrize(
    ("args", "status", "payload_or_message"),
    [
        pytest.param([b"Text", b"abc"], 200, b"ABC", id="a str result is UTF-8"),
        pytest.param(
            [b"Json"], 200, '{"a":"é","b":[1,2]}'.encode(), id="a dict is compact sorted JSON"
        ),
        pytest.param([b"Nothing"], 200, b"", id="None is an empty payload"),
        pytest.param([b"shapes:Text", b"x"], 200, b"X", id="a qualified name is accepted"),
        pytest.param(
            [b"other:Text", b"x"],
            404,
            "contract shapes has no function other:Text; functions: Announce, Json, Nothing, Text",
            id="a name qualified with another contract is unknown",
        ),
        pytest.param(
            [b"helper"], 404, "has no function helper", id="undecorated methods are not callable"
        ),
        pytest.param(
            [b"Text"], 400, "Text takes 1 arguments, got 0", id="too few arguments are refused"
        ),
        pytest.param(
            [b"Text", b"a", b"b"],
            400,
            "Text takes 1 arguments, got 2",
            id="too many arguments are refused",
        ),
        pytest.param(
            [b"Text", b"\xc3"], 400, "argument 1 of Text is not UTF-8", id="bad UTF-8 is refused"
        ),
    ],
)
def test_calling_convention(
    org1: Org, msps: MspManager, args: list[bytes], status: int, payload_or_message: bytes | str
) -> None:
    result = simulate(Shapes(), "shapes", args, DictState(), tx_context(org1, msps))
    assert result.status == status
    if isinstance(payload_or_message, bytes):
        assert result.payload == payload_or_message
    else:
        assert payload_or_message in result.message


def test_equal_inputs_give_byte_identical_results(org1: Org, msps: MspManager) -> None:
    tx = tx_context(org1, msps)
    state = DictState()
    args = [b"Announce", b"\x00\xff"]
    first = simulate(Shapes(), "shapes", args, state, tx)
    second = simulate(Shapes(), "shapes", args, state, tx)
    assert first.status == 200
    assert first.event is not None
    assert first == second
