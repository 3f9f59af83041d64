"""Fabric's asset-transfer-basic sample answers byte for byte as its Go chaincode does.

Expected strings are what fabric-samples `asset-transfer-basic/chaincode-go` under
fabric-contract-api-go v2 returns: Go's `json.Marshal` of the Asset struct, a bool as "true",
errors as status 500 with the chaincode's message.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from tests.conftest import Org
from tests.unit.contracts.fakes import DictState, tx_context

from medalliance.contracts.determinism import check_contract_source
from medalliance.contracts.package import PackageStore, build_package
from medalliance.contracts.simulation import SimulationResult, simulate
from medalliance.identity.msp import MspManager
from medalliance.ledger.sqlite_state import SqliteState
from medalliance.ledger.state import TxWrites, Write
from medalliance.samples import asset_transfer_basic
from medalliance.samples.asset_transfer_basic import AssetTransferBasic

NAMESPACE = "basic"
INITIAL = [
    '{"AppraisedValue":300,"Color":"blue","ID":"asset1","Owner":"Tomoko","Size":5}',
    '{"AppraisedValue":400,"Color":"red","ID":"asset2","Owner":"Brad","Size":5}',
    '{"AppraisedValue":500,"Color":"green","ID":"asset3","Owner":"Jin Soo","Size":10}',
    '{"AppraisedValue":600,"Color":"yellow","ID":"asset4","Owner":"Max","Size":10}',
    '{"AppraisedValue":700,"Color":"black","ID":"asset5","Owner":"Adriana","Size":15}',
    '{"AppraisedValue":800,"Color":"white","ID":"asset6","Owner":"Michel","Size":15}',
]
ASSET7 = b'{"AppraisedValue":1300,"Color":"yellow","ID":"asset7","Owner":"Tom","Size":5}'


def kv(result: SimulationResult) -> kv_rwset_pb2.KVRWSet:
    txrw = rwset_pb2.TxReadWriteSet.FromString(result.rwset)
    return kv_rwset_pb2.KVRWSet.FromString(txrw.ns_rwset[0].rwset)


class Ledger:
    """One channel's world state for the contract; successful calls commit, each in a block."""

    def __init__(self, state: DictState | SqliteState, org: Org, msps: MspManager) -> None:
        self.state, self.org, self.msps = state, org, msps
        self.calls = 0

    def call(self, *args: str) -> SimulationResult:
        self.calls += 1
        tx = tx_context(self.org, self.msps, tx_id=f"tx{self.calls}")
        result = simulate(
            AssetTransferBasic(), NAMESPACE, [a.encode() for a in args], self.state, tx
        )
        if result.status == 200 and result.rwset:
            writes = tuple(
                Write(NAMESPACE, w.key, None if w.is_delete else bytes(w.value))
                for w in kv(result).writes
            )
            self.write(*writes)
        return result

    def ok(self, *args: str) -> bytes:
        result = self.call(*args)
        assert result.status == 200, result.message
        return result.payload

    def write(self, *writes: Write) -> None:
        """Commit writes as one transaction, as if another contract version had made them."""
        if isinstance(self.state, SqliteState):
            block = self.state.savepoint + 1
            self.state.apply_block(block, [TxWrites(0, f"tx{block}", block, writes)])
            return
        for w in writes:
            if w.value is None:
                self.state.data.pop((w.namespace, w.key), None)
            else:
                self.state.put(w.namespace, w.key, w.value)

    def stored(self) -> dict[str, bytes]:
        return {key: v.value for key, v in self.state.range(NAMESPACE, "", "")}


@pytest.fixture(params=["dict", "sqlite"])
def ledger(
    request: pytest.FixtureRequest, tmp_path: Path, org1: Org, msps: MspManager
) -> Iterator[Ledger]:
    if request.param == "dict":
        yield Ledger(DictState(), org1, msps)
        return
    state = SqliteState.open(tmp_path / "state.db")
    state.apply_block(0, [])
    yield Ledger(state, org1, msps)
    state.close()


# --- InitLedger, ReadAsset and the JSON Go writes ---------------------------------------------


def test_init_ledger_writes_the_six_sample_assets_as_go_marshals_them(ledger: Ledger) -> None:
    assert ledger.ok("InitLedger") == b""
    assert ledger.stored() == {f"asset{i}": a.encode() for i, a in enumerate(INITIAL, start=1)}


def test_a_created_asset_reads_back_byte_for_byte_as_go_writes_it(ledger: Ledger) -> None:
    # The arguments of application-gateway-typescript's createAsset().
    assert ledger.ok("CreateAsset", "asset7", "yellow", "5", "Tom", "1300") == b""
    assert ledger.stored() == {"asset7": ASSET7}
    assert ledger.ok("ReadAsset", "asset7") == ASSET7


@pytest.mark.parametrize(
    ("color", "encoded"),
    [
        pytest.param('say "hi"\\', r'"say \"hi\"\\"', id="quotes and backslashes are escaped"),
        pytest.param("<b>&", r'"\u003cb\u003e\u0026"', id="HTML characters are escaped as Go does"),
        pytest.param("a\u2028b\u2029", r'"a\u2028b\u2029"', id="JavaScript line ends are escaped"),
        pytest.param("\b\f\n\r\t", r'"\b\f\n\r\t"', id="short escapes for control characters"),
        pytest.param("\x01\x1f", r'"\u0001\u001f"', id="other controls as lower-case \\u00xx"),
        pytest.param("蓝/é\x7f", '"蓝/é\x7f"', id="non-ASCII, slash and DEL stay as they are"),
    ],
)
def test_strings_are_escaped_as_go_json_marshal_escapes_them(
    ledger: Ledger, color: str, encoded: str
) -> None:
    ledger.ok("CreateAsset", "a", color, "1", "o", "2")
    expected = f'{{"AppraisedValue":2,"Color":{encoded},"ID":"a","Owner":"o","Size":1}}'
    assert ledger.ok("ReadAsset", "a") == expected.encode()
    assert json.loads(expected)["Color"] == color


def test_reading_a_missing_asset_fails_with_the_go_message(ledger: Ledger) -> None:
    result = ledger.call("ReadAsset", "asset70")
    assert (result.status, result.message, result.payload) == (
        500,
        "the asset asset70 does not exist",
        b"",
    )


def test_a_read_asset_is_re_marshalled_as_go_unmarshal_and_marshal_would(ledger: Ledger) -> None:
    # Case-insensitive keys, unknown keys and nulls ignored, missing fields zero, spaces dropped.
    raw = b'{"id": "x", "OWNER": "Ann", "Size": 3, "Extra": [1], "Color": null}'
    ledger.write(Write(NAMESPACE, "x", raw))
    assert ledger.ok("ReadAsset", "x") == (
        b'{"AppraisedValue":0,"Color":"","ID":"x","Owner":"Ann","Size":3}'
    )


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"not json", id="not JSON"),
        pytest.param(b'["ID", "x"]', id="an array"),
        pytest.param(b'{"Size": "5"}', id="a string for an int"),
        pytest.param(b'{"Size": 5.5}', id="a fraction for an int"),
        pytest.param(b'{"Size": 9223372036854775808}', id="an int beyond int64"),
        pytest.param(b'{"Owner": 7}', id="a number for a string"),
        pytest.param(b'{"Size": NaN}', id="a NaN"),
    ],
)
def test_a_stored_value_go_cannot_unmarshal_is_refused(ledger: Ledger, raw: bytes) -> None:
    ledger.write(Write(NAMESPACE, "x", raw))
    result = ledger.call("ReadAsset", "x")
    assert result.status == 500
    assert result.message.startswith("the value of x is not an asset")


# --- CreateAsset and UpdateAsset: integer arguments and existence -----------------------------


@pytest.mark.parametrize(
    ("size", "value"),
    [
        pytest.param("+5", 5, id="a plus sign is accepted"),
        pytest.param("-5", -5, id="a negative size is accepted"),
        pytest.param("007", 7, id="leading zeros are accepted"),
        pytest.param("", 0, id="an empty argument is zero"),
        pytest.param("9223372036854775807", 2**63 - 1, id="the largest int64"),
    ],
)
def test_integer_arguments_parse_as_strconv_atoi(ledger: Ledger, size: str, value: int) -> None:
    ledger.ok("CreateAsset", "a", "c", size, "o", "1")
    assert json.loads(ledger.ok("ReadAsset", "a"))["Size"] == value


@pytest.mark.parametrize(
    ("size", "appraised_value", "message"),
    [
        pytest.param(
            "five",
            "1",
            "error managing parameter param2. conversion error. cannot convert passed value five to int",
            id="a word is not a size",
        ),
        pytest.param(
            "1",
            "1.5",
            "error managing parameter param4. conversion error. cannot convert passed value 1.5 to int",
            id="a fraction is not a value",
        ),
        pytest.param("x", "y", "param2. ", id="the first bad parameter is reported"),
        pytest.param(" 5", "1", "value  5 to int", id="spaces are refused"),
        pytest.param("1_000", "1", "value 1_000 to int", id="underscores are refused"),
        pytest.param("٥", "1", "value ٥ to int", id="only ASCII digits"),
        pytest.param("9223372036854775808", "1", "to int", id="beyond int64 is refused"),
    ],
)
@pytest.mark.parametrize("function", ["CreateAsset", "UpdateAsset"])
def test_a_non_integer_argument_is_refused(
    ledger: Ledger, function: str, size: str, appraised_value: str, message: str
) -> None:
    ledger.ok("InitLedger")
    before = ledger.stored()
    result = ledger.call(function, "asset1", "c", size, "o", appraised_value)
    assert (result.status, result.rwset) == (500, b"")
    assert message in result.message
    assert ledger.stored() == before


def test_creating_an_existing_asset_fails_and_changes_nothing(ledger: Ledger) -> None:
    ledger.ok("InitLedger")
    before = ledger.stored()
    result = ledger.call("CreateAsset", "asset1", "pink", "1", "Someone", "1")
    assert (result.status, result.message, result.rwset) == (
        500,
        "the asset asset1 already exists",
        b"",
    )
    assert ledger.stored() == before


def test_updating_overwrites_every_field(ledger: Ledger) -> None:
    ledger.ok("InitLedger")
    assert ledger.ok("UpdateAsset", "asset3", "pink", "11", "Ann", "999") == b""
    assert ledger.ok("ReadAsset", "asset3") == (
        b'{"AppraisedValue":999,"Color":"pink","ID":"asset3","Owner":"Ann","Size":11}'
    )


def test_updating_a_missing_asset_fails_and_creates_nothing(ledger: Ledger) -> None:
    # application-gateway-typescript's updateNonExistentAsset().
    result = ledger.call("UpdateAsset", "asset70", "blue", "5", "Tomoko", "300")
    assert (result.status, result.message, result.rwset) == (
        500,
        "the asset asset70 does not exist",
        b"",
    )
    assert ledger.stored() == {}


# --- DeleteAsset, AssetExists, TransferAsset ---------------------------------------------------


def test_a_deleted_asset_no_longer_exists(ledger: Ledger) -> None:
    ledger.ok("InitLedger")
    assert ledger.ok("AssetExists", "asset2") == b"true"
    assert ledger.ok("DeleteAsset", "asset2") == b""
    assert ledger.ok("AssetExists", "asset2") == b"false"
    assert "asset2" not in ledger.stored()
    assert ledger.call("ReadAsset", "asset2").message == "the asset asset2 does not exist"


def test_deleting_a_missing_asset_fails(ledger: Ledger) -> None:
    result = ledger.call("DeleteAsset", "asset70")
    assert (result.status, result.message, result.rwset) == (
        500,
        "the asset asset70 does not exist",
        b"",
    )


def test_transfer_returns_the_old_owner_and_changes_only_the_owner(ledger: Ledger) -> None:
    ledger.ok("CreateAsset", "asset7", "yellow", "5", "Tom", "1300")
    # application-gateway-typescript's transferAssetAsync() prints this result as the old owner.
    assert ledger.ok("TransferAsset", "asset7", "Saptha") == b"Tom"
    assert ledger.ok("ReadAsset", "asset7") == ASSET7.replace(b'"Tom"', b'"Saptha"')


def test_transferring_a_missing_asset_fails(ledger: Ledger) -> None:
    result = ledger.call("TransferAsset", "asset70", "Saptha")
    assert (result.status, result.message, result.rwset) == (
        500,
        "the asset asset70 does not exist",
        b"",
    )


# --- GetAllAssets -------------------------------------------------------------------------------


def test_all_assets_come_back_as_one_json_array_in_key_order(ledger: Ledger) -> None:
    ledger.ok("InitLedger")
    for asset_id in ["asset10", "Asset0", "b", "asset1a"]:
        ledger.ok("CreateAsset", asset_id, "c", "1", "o", "1")
    # Byte order, as Fabric's state databases range over keys: upper case first, "10" before "2".
    created = {
        i: f'{{"AppraisedValue":1,"Color":"c","ID":"{i}","Owner":"o","Size":1}}'
        for i in ["Asset0", "asset10", "asset1a", "b"]
    }
    expected = [created["Asset0"], INITIAL[0], created["asset10"], created["asset1a"]]
    expected += [*INITIAL[1:], created["b"]]
    assert ledger.ok("GetAllAssets") == f"[{','.join(expected)}]".encode()


def test_all_assets_of_an_empty_ledger_is_an_empty_payload_as_in_go(ledger: Ledger) -> None:
    # Go's GetAllAssets returns a nil slice, which the Go contract API serialises as "".
    result = ledger.call("GetAllAssets")
    assert (result.status, result.payload) == (200, b"")


def test_all_assets_is_an_open_range_query(ledger: Ledger) -> None:
    ledger.ok("InitLedger")
    (range_query,) = kv(ledger.call("GetAllAssets")).range_queries_info
    assert (range_query.start_key, range_query.end_key, range_query.itr_exhausted) == (
        "\x01",
        "",
        True,
    )
    assert [r.key for r in range_query.raw_reads.kv_reads] == [f"asset{i}" for i in range(1, 7)]


# --- read-only functions, the sample application, determinism -------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["ReadAsset", "asset1"], id="ReadAsset"),
        pytest.param(["AssetExists", "asset1"], id="AssetExists"),
        pytest.param(["GetAllAssets"], id="GetAllAssets"),
    ],
)
def test_a_read_only_call_writes_nothing(ledger: Ledger, args: list[str]) -> None:
    ledger.ok("InitLedger")
    before = ledger.stored()
    result = ledger.call(*args)
    assert result.status == 200
    assert list(kv(result).writes) == []
    assert ledger.stored() == before


def test_only_the_reading_functions_are_evaluate_transactions() -> None:
    functions = AssetTransferBasic.functions()
    assert {name for name, info in functions.items() if info.evaluate} == {
        "ReadAsset",
        "AssetExists",
        "GetAllAssets",
    }
    assert set(functions) == {
        "InitLedger",
        "CreateAsset",
        "ReadAsset",
        "UpdateAsset",
        "DeleteAsset",
        "AssetExists",
        "TransferAsset",
        "GetAllAssets",
    }


def test_functions_answer_to_the_go_contract_name(ledger: Ledger) -> None:
    ledger.ok("SmartContract:InitLedger")
    assert ledger.ok("SmartContract:AssetExists", "asset6") == b"true"


def test_the_sample_application_runs_through(ledger: Ledger) -> None:
    """application-gateway-typescript's main(), call by call."""
    ledger.ok("InitLedger")
    assert json.loads(ledger.ok("GetAllAssets")) == [json.loads(a) for a in INITIAL]
    ledger.ok("CreateAsset", "asset7", "yellow", "5", "Tom", "1300")
    assert ledger.ok("TransferAsset", "asset7", "Saptha") == b"Tom"
    assert json.loads(ledger.ok("ReadAsset", "asset7"))["Owner"] == "Saptha"
    failed = ledger.call("UpdateAsset", "asset70", "blue", "5", "Tomoko", "300")
    assert (failed.status, failed.message) == (500, "the asset asset70 does not exist")


def test_the_module_passes_the_determinism_check() -> None:
    assert check_contract_source(inspect.getsource(asset_transfer_basic)) == []


def test_the_contract_installs_and_loads_as_a_package(tmp_path: Path) -> None:
    entry = "medalliance.samples.asset_transfer_basic:AssetTransferBasic"
    store = PackageStore(tmp_path / "packages")
    package_id = store.install(build_package("basic_1.0", entry))
    assert isinstance(store.load(package_id), AssetTransferBasic)
