"""The registrar model (ca/registrar.py): who may register, enrol and revoke whom."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from medalliance.ca.registrar import (
    UNLIMITED,
    Attribute,
    AttributeRequest,
    CaIdentity,
    Registration,
    bootstrap_registrar,
    certificate_attributes,
    check_enroll,
    check_register,
    check_revoke,
)
from medalliance.errors import CaAuthenticationFailed, CaRegistrarDenied, InvalidArgument

ADMIN = bootstrap_registrar("admin")
# A department registrar: registers clients within hospital.cardiology, may hand out `role` only.
DEPT = CaIdentity(
    "dept",
    "client",
    "hospital.cardiology",
    (
        Attribute("hf.Registrar.Roles", "client"),
        Attribute("hf.Registrar.DelegateRoles", "client"),
        Attribute("hf.Registrar.Attributes", "role"),
    ),
    UNLIMITED,
)


@pytest.mark.parametrize(
    ("registrar", "request_", "ca_max", "error"),
    [
        pytest.param(
            DEPT,
            Registration("p1", type="peer"),
            -1,
            CaRegistrarDenied,
            id="a registrar cannot register a type outside its hf.Registrar.Roles",
        ),
        pytest.param(
            DEPT,
            Registration("u1", affiliation="hospital"),
            -1,
            CaRegistrarDenied,
            id="a registrar cannot register above its own affiliation",
        ),
        pytest.param(
            DEPT,
            Registration("u1", affiliation="hospital.cardiologyx"),
            -1,
            CaRegistrarDenied,
            id="a sibling affiliation sharing a prefix is not inside it",
        ),
        pytest.param(
            DEPT,
            Registration("u1", attributes=(Attribute("hf.Revoker", "true"),)),
            -1,
            CaRegistrarDenied,
            id="a registrar cannot grant hf.Revoker it does not hold",
        ),
        pytest.param(
            DEPT,
            Registration("u1", attributes=(Attribute("ward", "3"),)),
            -1,
            CaRegistrarDenied,
            id="a registrar cannot register an attribute its patterns forbid",
        ),
        pytest.param(
            DEPT,
            Registration("u1", attributes=(Attribute("hf.Registrar.Roles", "client,peer"),)),
            -1,
            CaRegistrarDenied,
            id="a registrar cannot delegate roles it cannot delegate",
        ),
        pytest.param(
            ADMIN,
            Registration("u1", attributes=(Attribute("hf.EnrollmentID", "x"),)),
            -1,
            InvalidArgument,
            id="the CA's own hf attributes cannot be registered",
        ),
        pytest.param(
            ADMIN,
            Registration("u1", attributes=(Attribute("role", "Doctor; DROP"),)),
            -1,
            InvalidArgument,
            id="an alliance role that is not a role name is refused",
        ),
        pytest.param(
            ADMIN,
            Registration("u1", type="superuser"),
            -1,
            InvalidArgument,
            id="an unknown identity type is refused",
        ),
        pytest.param(
            ADMIN,
            Registration("../u1"),
            -1,
            InvalidArgument,
            id="an enrollment ID with path characters is refused",
        ),
        pytest.param(
            ADMIN,
            Registration("u1", max_enrollments=5),
            2,
            CaRegistrarDenied,
            id="max enrollments above the CA's maximum are refused",
        ),
        pytest.param(
            ADMIN,
            Registration("u1", attributes=(Attribute("role", "a"), Attribute("role", "b"))),
            -1,
            InvalidArgument,
            id="an attribute given twice is refused",
        ),
    ],
)
def test_registration_refusals(
    registrar: CaIdentity, request_: Registration, ca_max: int, error: type[Exception]
) -> None:
    with pytest.raises(error):
        check_register(registrar, request_, ca_max)


@pytest.mark.parametrize(
    ("registrar", "request_", "expected_affiliation", "expected_max"),
    [
        pytest.param(
            DEPT,
            Registration("u1", attributes=(Attribute("role", "doctor", ecert=True),)),
            "hospital.cardiology",
            3,
            id="a registrar's own affiliation and the CA's maximum are the defaults",
        ),
        pytest.param(
            DEPT,
            Registration("u1", affiliation="hospital.cardiology.ward3"),
            "hospital.cardiology.ward3",
            3,
            id="a registrar registers below its affiliation",
        ),
        pytest.param(
            ADMIN,
            Registration("u1", type="admin", max_enrollments=2),
            "",
            2,
            id="a registrar may ask for fewer enrollments than the CA's maximum",
        ),
    ],
)
def test_registrations_allowed(
    registrar: CaIdentity, request_: Registration, expected_affiliation: str, expected_max: int
) -> None:
    identity = check_register(registrar, request_, 3)  # a CA allowing 3 enrollments
    assert (identity.affiliation, identity.max_enrollments) == (expected_affiliation, expected_max)


def _user(**changes: Any) -> CaIdentity:
    base = CaIdentity("u1", "client", "", (Attribute("role", "doctor", ecert=True),), 2)
    return replace(base, **changes)


@pytest.mark.parametrize(
    ("identity", "secret_matches", "error"),
    [
        pytest.param(None, True, CaAuthenticationFailed, id="an unknown ID cannot enrol"),
        pytest.param(_user(), False, CaAuthenticationFailed, id="a wrong secret cannot enrol"),
        pytest.param(
            _user(enrollments=2),
            True,
            CaRegistrarDenied,
            id="an identity with its enrollments used up cannot enrol",
        ),
        pytest.param(_user(revoked=True), True, CaRegistrarDenied, id="a revoked ID cannot enrol"),
    ],
)
def test_enrolment_refusals(
    identity: CaIdentity | None, secret_matches: bool, error: type[Exception]
) -> None:
    with pytest.raises(error):
        check_enroll(identity, secret_matches=secret_matches)


def test_unknown_id_and_wrong_secret_read_the_same() -> None:
    messages = set()
    for identity, matches in ((None, True), (_user(), False)):
        with pytest.raises(CaAuthenticationFailed) as caught:
            check_enroll(identity, secret_matches=matches)
        messages.add(str(caught.value))
    assert len(messages) == 1


def test_enrolment_counts_and_the_role_travels_in_the_certificate() -> None:
    enrolled = check_enroll(_user(), secret_matches=True)
    assert enrolled.enrollments == 1
    attrs = certificate_attributes(enrolled, None)
    assert attrs == {
        "hf.EnrollmentID": "u1",
        "hf.Type": "client",
        "hf.Affiliation": "",
        "role": "doctor",
    }
    assert certificate_attributes(enrolled, [AttributeRequest("role")]) == {"role": "doctor"}
    with pytest.raises(InvalidArgument):
        certificate_attributes(enrolled, [AttributeRequest("ward")])
    assert certificate_attributes(enrolled, [AttributeRequest("ward", optional=True)]) == {}


def test_a_registrar_without_hf_revoker_cannot_revoke() -> None:
    with pytest.raises(CaRegistrarDenied):
        check_revoke(DEPT, _user(affiliation="hospital.cardiology"))


def test_the_bootstrap_registrar_revokes_any_type() -> None:
    check_revoke(bootstrap_registrar("admin2"), CaIdentity("p", "peer", "", (), UNLIMITED))
