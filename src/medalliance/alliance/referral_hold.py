"""The referral contract's side of capacity held with a referral (alliance/slot_hold.py).

`ReferWithHold` is `Refer` plus a slot of the target's resource, held by `resource.HoldSlot` in
the same transaction: a refused referral leaves no hold and a refused hold leaves no referral.
The referral records the hold and its `careType`. Releases follow the referral: rejection
(RejectReferral), `CancelHold` by the origin while the referral waits, `MarkNoShow` by the target
after the slot's time, `ReleaseLapsedHold` by any member once the acceptance deadline passed;
acceptance books the slot (AcceptReferral). Inherited by `ReferralContract`.

A release never rewrites the referral (its key is the target's decision, endorsed by the
target's peer): the hold's state and history live in the resource contract (`GetHold`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from medalliance.alliance.common import (
    call,
    check_id,
    load,
    now_iso,
    require_org,
    require_role,
    to_json,
)
from medalliance.contracts import Context, create_composite_key, transaction
from medalliance.errors import ContractError

_REFERRAL_EVENT = (
    "referralId", "visitNo", "fromHospital", "toHospital", "direction", "status", "clinicalRef",
)  # fmt: skip


def _referral(ctx: Context, referral_id: str) -> dict[str, Any]:
    check_id(referral_id, "referral id")
    return load(ctx, create_composite_key("referral", [referral_id]), f"referral {referral_id}")


def _held(ctx: Context, referral_id: str, party: str, *statuses: str) -> dict[str, Any]:
    """The referral, if it holds a slot and is in one of `statuses`; `party` (fromHospital,
    toHospital, or "" for any member) is checked first, so no one else learns its state."""
    referral = _referral(ctx, referral_id)
    if party:
        require_org(ctx, referral[party], f"release the slot held by referral {referral_id}")
    if not referral.get("hold"):
        raise ContractError(f"referral {referral_id} holds no slot", 404)
    if referral["status"] not in statuses:
        raise ContractError(f"referral {referral_id} is {referral['status']}", 409)
    return referral


def _release(ctx: Context, referral_id: str, reason: str) -> str:
    hold = call(ctx, "resource", "ReleaseHold", referral_id, reason)
    _announce(ctx, "HoldReleased", hold)
    return to_json(hold).decode()


def _announce(ctx: Context, name: str, hold: dict[str, Any]) -> None:
    """Only the top-level contract's event is kept (docs/alliance.md §3): the referral contract
    announces the holds its functions take and release. Ids only."""
    fields = ("referralId", "resourceId", "slot", "owner", "holder", "careType", "status")
    ctx.stub.set_event(name, to_json({k: hold[k] for k in fields}))


class ReferralHolds:
    if TYPE_CHECKING:  # ReferralContract's; a hold is taken with exactly its arguments
        Refer: Callable[..., str]

    @transaction
    def ReferWithHold(
        self,
        ctx: Context,
        referral_id: str,
        application_id: str,
        visit_no: str,
        from_hospital: str,
        to_hospital: str,
        direction: str,
        clinical_ref: str,
        resource_id: str,
        slot: str,
    ) -> str:
        """`Refer`, holding `slot` of the target's resource `resource_id`: both or neither."""
        # a transaction does not read its own writes: the referral is Refer's answer
        referral = json.loads(
            self.Refer(
                ctx, referral_id, application_id, visit_no, from_hospital, to_hospital, direction,
                clinical_ref,
            )
        )  # fmt: skip
        hold = call(
            ctx, "resource", "HoldSlot", referral_id, resource_id, slot, to_hospital,
            from_hospital, referral["deadline"],
        )  # fmt: skip
        referral.update(careType=hold["careType"], hold={"resourceId": resource_id, "slot": slot})
        ctx.stub.put_state(create_composite_key("referral", [referral_id]), to_json(referral))
        # the connectors' ReferralCreated (ids only), naming the held slot too
        event = {k: referral[k] for k in _REFERRAL_EVENT} | {
            k: hold[k] for k in ("resourceId", "slot", "careType")
        }
        ctx.stub.set_event("ReferralCreated", to_json(event))
        return to_json(referral).decode()

    @transaction
    def CancelHold(self, ctx: Context, referral_id: str) -> str:
        """The origin gives the slot back while its referral waits for the target."""
        require_role(ctx, "doctor")
        _held(ctx, referral_id, "fromHospital", "REFERRED")
        return _release(ctx, referral_id, "CANCELLED")

    @transaction
    def MarkNoShow(self, ctx: Context, referral_id: str) -> str:
        """The target records that the patient missed the held or booked slot (after its time)."""
        require_role(ctx, "doctor", "clerk")
        _held(ctx, referral_id, "toHospital", "REFERRED", "ACCEPTED")
        return _release(ctx, referral_id, "NO_SHOW")

    @transaction
    def ReleaseLapsedHold(self, ctx: Context, referral_id: str) -> str:
        """Any member (the alarm runner's sweeper) frees the slot of a referral the target left
        unanswered past its acceptance deadline."""
        referral = _held(ctx, referral_id, "", "REFERRED")
        if not referral["deadline"] or now_iso(ctx) <= referral["deadline"]:
            raise ContractError(
                f"referral {referral_id} may be answered until {referral['deadline']}", 409
            )
        return _release(ctx, referral_id, "LAPSED")
