"""The alliance registry as contracts see it: organisations, types and the regulator hierarchy.

It is the channel configuration (loaded from the network config at genesis, changed only by a
config update signed by the organisations' admins), not contract state: this contract only reads
it, so applications can show who supervises whom.
"""

from __future__ import annotations

from typing import Any

from medalliance.alliance.common import organization, regulators_above
from medalliance.contracts import Context, Contract, transaction
from medalliance.contracts.api import Organization


class RegistryContract(Contract):
    name = "registry"

    @transaction(evaluate=True)
    def GetOrganization(self, ctx: Context, msp_id: str) -> dict[str, Any]:
        return _describe(ctx, organization(ctx, msp_id))

    @transaction(evaluate=True)
    def ListOrganizations(self, ctx: Context) -> list[Any]:
        return [_describe(ctx, ctx.organizations[m]) for m in sorted(ctx.organizations)]


def _describe(ctx: Context, org: Organization) -> dict[str, Any]:
    supervised = sorted(
        m for m, o in ctx.organizations.items() if org.msp_id in (o.regulator, o.parent)
    )
    return {
        "mspId": org.msp_id,
        "type": org.type,
        "regulator": org.regulator,
        "parent": org.parent,
        "regulatorsAbove": regulators_above(ctx, org.msp_id),
        "supervises": supervised,
    }
