"""Fabric CA's registrar model: who may register, enrol, revoke and list whom.

Pure: no clock, no I/O, no randomness. The rules follow the Fabric CA User's Guide ("Registering
a new identity", "Revoking a certificate or identity"):

- an identity has a type (`client`, `peer`, `orderer`, `admin`: the node OU its certificates
  carry), an affiliation (dotted, "" is the root), attributes and a maximum number of enrolments;
- a registrar registers only the types listed in its `hf.Registrar.Roles`, only inside its own
  affiliation, and only attributes its `hf.Registrar.Attributes` patterns allow; it can hand out
  `hf.Revoker`, `hf.GenCRL`, ... only when it holds them itself, and `hf.Registrar.*` values only
  within its own;
- `hf.EnrollmentID`, `hf.Type` and `hf.Affiliation` are set by the CA, never registered;
- the alliance role travels as the attribute `role` (identity/ca.py), so contracts see the same
  role in an enrolled certificate as in one `network init` made.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from medalliance.errors import CaAuthenticationFailed, CaRegistrarDenied, InvalidArgument

IdentityType = Literal["client", "peer", "orderer", "admin"]
IDENTITY_TYPES: tuple[IdentityType, ...] = ("client", "peer", "orderer", "admin")
UNLIMITED = -1  # max enrolments without a limit, as Fabric CA writes it

ROLES = "hf.Registrar.Roles"
DELEGATE_ROLES = "hf.Registrar.DelegateRoles"
ATTRIBUTES = "hf.Registrar.Attributes"
REVOKER = "hf.Revoker"
GENCRL = "hf.GenCRL"
# Boolean privileges: a registrar grants one only when it holds it.
_FLAGS = (REVOKER, GENCRL, "hf.IntermediateCA", "hf.AffiliationMgr")
# Set by the CA on every enrolment; registering one is refused.
AUTOMATIC = ("hf.EnrollmentID", "hf.Type", "hf.Affiliation")
ALLIANCE_ROLE = "role"

_ENROLLMENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@._-]{0,63}$")
_AFFILIATION = re.compile(r"^([a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*)?$")
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,63}$")
_ALLIANCE_ROLE = re.compile(r"^[a-z][a-z0-9_-]*$")  # as network.yaml's user `role`


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute of an identity; `ecert` puts it in enrolment certificates by default."""

    name: str
    value: str
    ecert: bool = False


@dataclass(frozen=True, slots=True)
class CaIdentity:
    """A registered identity as the CA keeps it (its secret's hash lives in the store only)."""

    enrollment_id: str
    type: IdentityType
    affiliation: str
    attributes: tuple[Attribute, ...]
    max_enrollments: int  # UNLIMITED or > 0
    enrollments: int = 0
    revoked: bool = False

    def attribute(self, name: str) -> str | None:
        return next((a.value for a in self.attributes if a.name == name), None)

    def is_set(self, flag: str) -> bool:
        return (self.attribute(flag) or "").lower() == "true"

    def listed(self, name: str) -> frozenset[str]:
        """The comma-separated values of attribute `name` (`hf.Registrar.Roles` and the like)."""
        return frozenset(v.strip() for v in (self.attribute(name) or "").split(",") if v.strip())


@dataclass(frozen=True, slots=True)
class Registration:
    """What a registrar asks for; `max_enrollments` 0 means the CA's maximum."""

    enrollment_id: str
    type: str = "client"
    affiliation: str | None = None  # None: the registrar's own
    attributes: tuple[Attribute, ...] = ()
    max_enrollments: int = 0


@dataclass(frozen=True, slots=True)
class AttributeRequest:
    """An attribute an enrolment wants in its certificate (Fabric's `attr_reqs`)."""

    name: str
    optional: bool = False


def bootstrap_registrar(enrollment_id: str) -> CaIdentity:
    """The CA's first registrar, as Fabric CA's `-b admin:adminpw` makes it: it registers every
    type and attribute, revokes, makes CRLs; root affiliation, unlimited enrolments."""
    check_enrollment_id(enrollment_id)
    every = ",".join(IDENTITY_TYPES)
    attributes = (
        Attribute(ROLES, every),
        Attribute(DELEGATE_ROLES, every),
        Attribute(ATTRIBUTES, "*"),
        *(Attribute(flag, "true") for flag in _FLAGS),
    )
    # A client, as Fabric CA bootstraps it: the registrar is no channel admin (admin OU) and
    # carries no alliance role, so its certificate can manage the CA and nothing else.
    return CaIdentity(enrollment_id, "client", "", attributes, UNLIMITED)


def check_enrollment_id(enrollment_id: str) -> None:
    if not _ENROLLMENT_ID.match(enrollment_id):
        raise InvalidArgument(
            "an enrollment ID is 1-64 letters, digits and @._- starting with a letter or digit"
        )


def check_register(registrar: CaIdentity, request: Registration, ca_max: int) -> CaIdentity:
    """The identity `registrar` may register for `request`, or the refusal.

    `ca_max` is the CA's maximum enrolments (UNLIMITED or > 0). Raises `InvalidArgument` for a
    malformed request and `CaRegistrarDenied` for one the registrar's attributes do not allow.
    """
    check_enrollment_id(request.enrollment_id)
    kind = _identity_type(request.type)
    if kind not in _allowed_types(registrar, ROLES):
        raise CaRegistrarDenied(
            f"registrar {registrar.enrollment_id} may register types "
            f"{sorted(_allowed_types(registrar, ROLES)) or 'none'}, not {kind!r}"
        )
    affiliation = registrar.affiliation if request.affiliation is None else request.affiliation
    if not _AFFILIATION.match(affiliation):
        raise InvalidArgument(f"affiliation {affiliation!r} is not dotted lower-case names")
    if not is_within(affiliation, registrar.affiliation):
        raise CaRegistrarDenied(
            f"registrar {registrar.enrollment_id} registers within affiliation "
            f"{registrar.affiliation!r} only, not {affiliation!r}"
        )
    names = [a.name for a in request.attributes]
    if len(set(names)) != len(names):
        raise InvalidArgument("an attribute is given twice; give each name once")
    for attribute in request.attributes:
        _check_attribute(registrar, attribute)
    return CaIdentity(
        request.enrollment_id,
        kind,
        affiliation,
        request.attributes,
        _max_enrollments(request.max_enrollments, ca_max),
    )


def check_enroll(identity: CaIdentity | None, *, secret_matches: bool) -> CaIdentity:
    """The identity after one more enrolment with its secret, or the refusal.

    Raises `CaAuthenticationFailed` for an unknown ID or a wrong secret (one message for both)
    and `CaRegistrarDenied` for a revoked identity or one with no enrolments left.
    """
    if identity is None or not secret_matches:
        raise CaAuthenticationFailed("authentication failure: the enrollment ID or secret is wrong")
    if identity.revoked:
        raise CaRegistrarDenied(f"identity {identity.enrollment_id} is revoked; it cannot enrol")
    if identity.max_enrollments != UNLIMITED and identity.enrollments >= identity.max_enrollments:
        raise CaRegistrarDenied(
            f"identity {identity.enrollment_id} has used its {identity.max_enrollments} "
            "enrolment(s); reenrol with its certificate, or ask a registrar for a new identity"
        )
    return replace(identity, enrollments=identity.enrollments + 1)


def certificate_attributes(
    identity: CaIdentity, requests: Sequence[AttributeRequest] | None
) -> dict[str, str]:
    """The attributes an enrolment certificate carries (Fabric CA's `attrs` extension).

    Without `requests`: the CA's three `hf.*` values and every `ecert` attribute. With them:
    exactly those asked for; a missing one that is not optional raises `InvalidArgument`.
    """
    available: Mapping[str, str] = {
        "hf.EnrollmentID": identity.enrollment_id,
        "hf.Type": identity.type,
        "hf.Affiliation": identity.affiliation,
        **{a.name: a.value for a in identity.attributes},
    }
    if requests is None:
        defaults = {name: available[name] for name in AUTOMATIC}
        return defaults | {a.name: a.value for a in identity.attributes if a.ecert}
    chosen: dict[str, str] = {}
    for request in requests:
        if request.name in available:
            chosen[request.name] = available[request.name]
        elif not request.optional:
            raise InvalidArgument(
                f"identity {identity.enrollment_id} has no attribute {request.name!r}; "
                "mark it optional or ask a registrar to add it"
            )
    return chosen


def check_revoke(registrar: CaIdentity, target: CaIdentity) -> None:
    """Refuses unless `registrar` holds `hf.Revoker` and `target` is within its affiliation
    and of a type it may register (Fabric's rule), raising `CaRegistrarDenied`."""
    if not registrar.is_set(REVOKER):
        raise CaRegistrarDenied(f"{registrar.enrollment_id} lacks hf.Revoker; it cannot revoke")
    if not can_manage(registrar, target):
        raise CaRegistrarDenied(
            f"{registrar.enrollment_id} cannot revoke {target.enrollment_id}: outside its "
            "affiliation or of a type it may not register"
        )


def check_gencrl(caller: CaIdentity) -> None:
    if not caller.is_set(GENCRL):
        raise CaRegistrarDenied(f"{caller.enrollment_id} lacks hf.GenCRL; it cannot make a CRL")


def can_manage(registrar: CaIdentity, target: CaIdentity) -> bool:
    """Whether `registrar` may see and revoke `target` (identity listing shows these only)."""
    return target.type in _allowed_types(registrar, ROLES) and is_within(
        target.affiliation, registrar.affiliation
    )


def is_within(affiliation: str, parent: str) -> bool:
    """Whether `affiliation` is `parent` or below it ("" is the root, above everything)."""
    return parent == "" or affiliation == parent or affiliation.startswith(parent + ".")


def _identity_type(text: str) -> IdentityType:
    for kind in IDENTITY_TYPES:
        if text == kind:
            return kind
    raise InvalidArgument(f"identity type {text!r} is not one of {', '.join(IDENTITY_TYPES)}")


def _allowed_types(registrar: CaIdentity, attribute: str) -> frozenset[str]:
    listed = registrar.listed(attribute)
    return frozenset(IDENTITY_TYPES) if "*" in listed else listed


def _max_enrollments(requested: int, ca_max: int) -> int:
    if requested == 0:
        return ca_max
    if requested < UNLIMITED:
        raise InvalidArgument("max_enrollments is -1 (unlimited), 0 (the CA's) or a positive count")
    if ca_max != UNLIMITED and (requested == UNLIMITED or requested > ca_max):
        raise CaRegistrarDenied(
            f"max_enrollments {requested} exceeds this CA's maximum of {ca_max}; ask for fewer"
        )
    return requested


def _check_attribute(registrar: CaIdentity, attribute: Attribute) -> None:
    name = attribute.name
    if not _ATTRIBUTE_NAME.match(name) or len(attribute.value) > 1024:
        raise InvalidArgument("an attribute name is 1-64 letters, digits and ._-; values ≤ 1024")
    if name in AUTOMATIC:
        raise InvalidArgument(f"{name} is set by the CA on enrolment; do not register it")
    if not _pattern_allows(registrar.listed(ATTRIBUTES), name):
        raise CaRegistrarDenied(
            f"registrar {registrar.enrollment_id} may not register attribute {name!r} "
            f"(its {ATTRIBUTES} does not allow it)"
        )
    if name == ALLIANCE_ROLE and not _ALLIANCE_ROLE.match(attribute.value):
        raise InvalidArgument("the alliance role is lower-case letters, digits, _ and -")
    if name in _FLAGS:
        if attribute.value.lower() not in ("true", "false"):
            raise InvalidArgument(f"{name} is true or false")
        if attribute.value.lower() == "true" and not registrar.is_set(name):
            raise CaRegistrarDenied(f"registrar {registrar.enrollment_id} cannot grant {name}")
    if name in (ROLES, DELEGATE_ROLES):
        asked = {v.strip() for v in attribute.value.split(",") if v.strip()}
        if not asked <= _allowed_types(registrar, DELEGATE_ROLES):
            raise CaRegistrarDenied(
                f"registrar {registrar.enrollment_id} can delegate only "
                f"{sorted(_allowed_types(registrar, DELEGATE_ROLES))} in {name}"
            )
    if name == ATTRIBUTES:
        mine = registrar.listed(ATTRIBUTES)
        asked = {v.strip() for v in attribute.value.split(",") if v.strip()}
        if not all(_pattern_covers(mine, pattern) for pattern in asked):
            raise CaRegistrarDenied(
                f"registrar {registrar.enrollment_id} can delegate attribute patterns within "
                "its own hf.Registrar.Attributes only"
            )


def _pattern_allows(patterns: frozenset[str], name: str) -> bool:
    """Fabric's attribute patterns: a name, `*`, or a prefix ending in `*` (`hf.*`)."""
    return any(
        p == name or p == "*" or (p.endswith("*") and name.startswith(p[:-1])) for p in patterns
    )


def _pattern_covers(patterns: frozenset[str], pattern: str) -> bool:
    if pattern.endswith("*"):
        prefix = pattern[:-1]
        return any(p == "*" or (p.endswith("*") and prefix.startswith(p[:-1])) for p in patterns)
    return _pattern_allows(patterns, pattern)
