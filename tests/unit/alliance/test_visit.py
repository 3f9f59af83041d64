"""The visit registry (就诊号): unique visits, pseudonymous patients, moves only by a referral."""

from __future__ import annotations

import pytest
from fabric_protos.peer import chaincode_event_pb2
from tests.unit.alliance.harness import Alliance

from medalliance.alliance.visit import VisitContract
from medalliance.contracts import Context, Contract, transaction

PATIENT = "9f86d081884c7d65"  # a pseudonym: 16 hex characters
A, B, C = "SecondaryAMSP", "TertiaryAMSP", "SecondaryCMSP"


class Mover(Contract):
    """Stands in for the referral contract to exercise the visit's own rules."""

    name = "referral"

    @transaction
    def Move(self, ctx: Context, visit_no: str, to: str) -> bytes:
        return ctx.stub.invoke_chaincode("visit", ["TransferVisit", visit_no, to])


@pytest.fixture
def alliance() -> Alliance:
    return Alliance({"visit": VisitContract(), "referral": Mover()})


def test_a_registered_visit_is_stored_and_announced(alliance: Alliance) -> None:
    result = alliance.call(A, "clerk", "visit", "RegisterVisit", "V-1", PATIENT, A)
    assert result.status == 200, result.message
    assert alliance.ok(B, "doctor", "visit", "GetVisit", "V-1") == {
        "visitNo": "V-1",
        "patientRef": PATIENT,
        "hospital": A,
        "registeredAt": "2025-11-28T12:00:01.000Z",
        "registeredBy": A,
    }
    assert result.event is not None
    event = chaincode_event_pb2.ChaincodeEvent.FromString(result.event)
    assert (event.event_name, event.payload) == (
        "VisitRegistered",
        b'{"hospital":"SecondaryAMSP","visitNo":"V-1"}',
    )


@pytest.mark.parametrize(
    ("caller", "role", "args", "status", "message"),
    [
        pytest.param(
            B, "doctor", ["V-2", PATIENT, A], 403,
            "caller of TertiaryAMSP cannot register a visit for SecondaryAMSP",
            id="a hospital registers visits only for itself",
        ),
        pytest.param(
            A, "auditor", ["V-2", PATIENT, A], 403, "role doctor or clerk required, caller has auditor",
            id="only doctors and clerks register visits",
        ),
        pytest.param(
            "DistrictHCMSP", "reviewer", ["V-2", PATIENT, "DistrictHCMSP"], 400,
            "DistrictHCMSP is a regulator organisation, not a hospital",
            id="visits are at hospitals",
        ),
        pytest.param(
            A, "doctor", ["V-1", PATIENT, A], 409, "visit V-1 already exists",
            id="a visit number is unique",
        ),
        pytest.param(
            A, "doctor", ["V-2", "Zhang San 110101199003071234", A], 400,
            "patientRef must be a pseudonym (16-64 lower-case hex), not an identity",
            id="a raw patient identity is refused",
        ),
        pytest.param(
            A, "doctor", ["V 2", PATIENT, A], 400,
            "visit number 'V 2' may use letters, digits and ._- (1-64)",
            id="a visit number with spaces is refused",
        ),
        pytest.param(
            A, "doctor", ["V-2", PATIENT], 400, "RegisterVisit takes 3 arguments, got 2",
            id="the argument count is checked",
        ),
    ],
)  # fmt: skip
def test_registration_rules(
    alliance: Alliance, caller: str, role: str, args: list[str], status: int, message: str
) -> None:
    alliance.ok(A, "doctor", "visit", "RegisterVisit", "V-1", PATIENT, A)
    assert alliance.refused(caller, role, "visit", "RegisterVisit", *args) == (status, message)


def test_an_unknown_visit_does_not_exist(alliance: Alliance) -> None:
    assert alliance.refused(A, "doctor", "visit", "GetVisit", "V-9") == (
        404,
        "visit V-9 does not exist",
    )


def test_patients_at_a_hospital_follow_their_visits(alliance: Alliance) -> None:
    for visit_no, msp_id in [("V-3", A), ("V-1", A), ("V-2", B)]:
        alliance.ok(msp_id, "doctor", "visit", "RegisterVisit", visit_no, PATIENT, msp_id)
    assert alliance.ok(A, "clerk", "visit", "PatientsAt", A) == [
        {"visitNo": "V-1", "patientRef": PATIENT},
        {"visitNo": "V-3", "patientRef": PATIENT},
    ]
    alliance.ok(A, "doctor", "referral", "Move", "V-3", B)
    assert [v["visitNo"] for v in alliance.ok(A, "clerk", "visit", "PatientsAt", A)] == ["V-1"]
    at_b = alliance.ok("DistrictHCMSP", "auditor", "visit", "PatientsAt", B)
    assert [v["visitNo"] for v in at_b] == ["V-2", "V-3"]


@pytest.mark.parametrize(
    ("caller", "role"),
    [(B, "doctor"), ("OtherHCMSP", "auditor")],
    ids=["another hospital", "a regulator of another district"],
)
def test_patients_at_a_hospital_are_for_it_and_its_regulators(
    alliance: Alliance, caller: str, role: str
) -> None:
    status, message = alliance.refused(caller, role, "visit", "PatientsAt", A)
    assert (status, message) == (
        403,
        f"{caller} is neither a party to the patients of {A} nor their regulator",
    )


def test_a_visit_moves_only_through_the_referral_contract(alliance: Alliance) -> None:
    alliance.ok(A, "doctor", "visit", "RegisterVisit", "V-3", PATIENT, A)
    assert alliance.refused(A, "doctor", "visit", "TransferVisit", "V-3", B) == (
        403,
        "a visit moves only through the referral contract",
    )


@pytest.mark.parametrize(
    ("caller", "target", "status", "message"),
    [
        pytest.param(
            B, B, 403, "patient of visit V-3 is at SecondaryAMSP, not TertiaryAMSP",
            id="another hospital cannot take the patient",
        ),
        pytest.param(
            A, A, 409, "visit V-3 is already at SecondaryAMSP", id="a visit stays where it is"
        ),
        pytest.param(
            A, "Org9MSP", 404, "Org9MSP is not a member of channel alliance",
            id="a visit moves only to a channel member",
        ),
        pytest.param(
            A, "CityHCMSP", 400, "CityHCMSP is a regulator organisation, not a hospital",
            id="a visit moves only to a hospital",
        ),
    ],
)  # fmt: skip
def test_transfer_rules(
    alliance: Alliance, caller: str, target: str, status: int, message: str
) -> None:
    alliance.ok(A, "doctor", "visit", "RegisterVisit", "V-3", PATIENT, A)
    assert alliance.refused(caller, "doctor", "referral", "Move", "V-3", target) == (
        status,
        message,
    )
    assert alliance.ok(A, "doctor", "visit", "GetVisit", "V-3")["hospital"] == A


def test_queries_cannot_write(alliance: Alliance) -> None:
    alliance.ok(A, "doctor", "visit", "RegisterVisit", "V-1", PATIENT, A)
    result = alliance.call(A, "doctor", "visit", "GetVisit", "V-1")
    assert result.status == 200
    assert b"VisitRegistered" not in result.rwset


def test_any_member_reads_a_visit_but_only_parties_list_a_hospitals_patients(
    alliance: Alliance,
) -> None:
    alliance.ok(A, "doctor", "visit", "RegisterVisit", "V-1", PATIENT, A)
    assert alliance.ok(C, "doctor", "visit", "GetVisit", "V-1")["hospital"] == A
    assert alliance.refused(C, "doctor", "visit", "PatientsAt", A)[0] == 403


def test_a_trailing_newline_is_not_part_of_an_id(alliance: Alliance) -> None:
    status, message = alliance.refused(A, "doctor", "visit", "RegisterVisit", "V-1\n", PATIENT, A)
    assert (status, message) == (
        400,
        "visit number 'V-1\\n' may use letters, digits and ._- (1-64)",
    )
    status, _ = alliance.refused(A, "doctor", "visit", "RegisterVisit", "V-2", PATIENT + "\n", A)
    assert status == 400


NEW = "0123456789abcdef0123456789abcdef"  # the patient's pseudonym after the migration


def test_the_holding_hospital_moves_a_visit_to_the_new_pseudonym(alliance: Alliance) -> None:
    alliance.ok(A, "doctor", "visit", "RegisterVisit", "V-1", PATIENT, A)
    moved = alliance.ok(A, "clerk", "visit", "MovePatientRef", "V-1", PATIENT, NEW)
    assert (moved["patientRef"], moved["formerPatientRefs"]) == (NEW, [PATIENT])
    assert alliance.ok(A, "clerk", "visit", "PatientsAt", A) == [
        {"visitNo": "V-1", "patientRef": NEW}
    ]


@pytest.mark.parametrize(
    ("caller", "role", "old", "new", "status", "message"),
    [
        pytest.param(B, "doctor", PATIENT, NEW, 403, "patient of visit V-1 is at SecondaryAMSP, not TertiaryAMSP", id="another hospital cannot re-key the visit"),
        pytest.param("DistrictHCMSP", "reviewer", PATIENT, NEW, 403, "role doctor or clerk required", id="a regulator cannot re-key the visit"),
        pytest.param(A, "doctor", NEW, PATIENT, 409, "visit V-1 is not bound to that old pseudonym", id="only from the pseudonym the visit has"),
        pytest.param(A, "doctor", PATIENT, "Zhang San 110101199003071234", 400, "must be a different pseudonym", id="never to an identity"),
        pytest.param(A, "doctor", PATIENT, PATIENT, 400, "must be a different pseudonym", id="never to the same pseudonym"),
    ],
)  # fmt: skip
def test_moving_a_pseudonym_rules(
    alliance: Alliance, caller: str, role: str, old: str, new: str, status: int, message: str
) -> None:
    alliance.ok(A, "doctor", "visit", "RegisterVisit", "V-1", PATIENT, A)
    refused = alliance.refused(caller, role, "visit", "MovePatientRef", "V-1", old, new)
    assert refused[0] == status
    assert message in refused[1]
    assert alliance.ok(A, "doctor", "visit", "GetVisit", "V-1")["patientRef"] == PATIENT
