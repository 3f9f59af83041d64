"""Fabric CA's REST request bodies (swagger-fabric-ca.json), validated at the server's edge.

Unknown fields are ignored rather than refused: Fabric's clients send fields we do not use
(`hosts`, `label`, `NotBefore`, ...), and refusing them would break unmodified clients. Every
field we act on is checked here or by the registrar core.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from medalliance.ca.registrar import Attribute, AttributeRequest, Registration


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    caname: str = Field(default="", max_length=64)


class AttributeRequestBody(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(max_length=64)
    optional: bool = False


class EnrollBody(_Body):
    certificate_request: str = Field(min_length=1, max_length=16384)
    profile: str = Field(default="", max_length=64)
    attr_reqs: tuple[AttributeRequestBody, ...] | None = Field(default=None, max_length=64)

    def attribute_requests(self) -> tuple[AttributeRequest, ...] | None:
        if self.attr_reqs is None:
            return None
        return tuple(AttributeRequest(a.name, a.optional) for a in self.attr_reqs)


class AttributeBody(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(max_length=64)
    value: str = Field(max_length=1024)
    ecert: bool = False


class RegisterBody(_Body):
    id: str = Field(max_length=64)
    type: str = Field(default="client", max_length=16)
    secret: SecretStr | None = Field(default=None, max_length=256)
    max_enrollments: int = Field(default=0, ge=-1, le=1_000_000)
    affiliation: str | None = Field(default=None, max_length=256)
    attrs: tuple[AttributeBody, ...] = Field(default=(), max_length=64)

    def registration(self) -> Registration:
        return Registration(
            enrollment_id=self.id,
            type=self.type or "client",
            # fabric-ca-client sends "" for "the registrar's own"; only None means that here
            affiliation=self.affiliation or None,
            attributes=tuple(Attribute(a.name, a.value, a.ecert) for a in self.attrs),
            max_enrollments=self.max_enrollments,
        )


class RevokeBody(_Body):
    id: str = Field(default="", max_length=64)
    aki: str = Field(default="", max_length=128)
    serial: str = Field(default="", max_length=128)
    reason: str = Field(default="", max_length=32)
    gencrl: bool = False

    @field_validator("id", "aki", "serial", "reason", mode="before")
    @classmethod
    def _null_is_empty(cls, value: object) -> object:
        # fabric-ca-client sends `"reason": null` when no reason is given
        return "" if value is None else value


class GenCrlBody(_Body):
    pass
