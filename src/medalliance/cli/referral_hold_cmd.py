"""`medalliance referral hold|cancel-hold|no-show|sweep-holds`: the slot a referral holds.

A referral made with `referral refer --hold-slot RESOURCE:SLOT` holds that slot of the target in
the same transaction (alliance/referral_hold.py). The origin may give it back while the referral
waits (`cancel-hold`), the target records a missed slot after its time (`no-show`), and anyone
frees the slots of referrals left unanswered past their deadline (`sweep-holds`, which the alarm
runner also does). Rejection releases it and acceptance books it, with no command of their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from medalliance.app.hold_sweep import sweep_holds
from medalliance.cli.alliance_cmd import As, Dir, record_table, session, show_committed, show_result
from medalliance.errors import InvalidArgument

ReferralId = Annotated[str, typer.Argument(help="The referral id.", show_default=False)]


def parse_hold_slot(value: str) -> tuple[str, str]:
    """(resource id, slot) from `RESOURCE:SLOT` (a slot may itself contain ':')."""
    resource, sep, slot = value.partition(":")
    if not sep or not resource or not slot:
        raise InvalidArgument(
            f"--hold-slot takes RESOURCE:SLOT, e.g. CT-1:2026-12-01T09:00, not {value!r}"
        )
    return resource, slot


def hold(referral_id: ReferralId, as_: As, directory: Dir = Path(".")) -> None:
    """The slot a referral holds and its history (its two hospitals and their regulators).

    Example: medalliance referral hold REF-1 --as User1@SecondaryHospitalA -d demo
    """
    with session(directory, as_) as s:
        found = s.evaluate("resource", "GetHold", referral_id)
    show_result(found, lambda h: record_table(f"hold of referral {referral_id}", _flat(h)))


def cancel_hold(referral_id: ReferralId, as_: As, directory: Dir = Path(".")) -> None:
    """Give back the slot your referral holds while it waits for the target (a doctor of the
    origin); the referral goes on.

    Example: medalliance referral cancel-hold REF-1 --as User1@SecondaryHospitalA -d demo
    """
    with session(directory, as_) as s:
        done = s.submit("referral", "CancelHold", referral_id)
    show_committed(done, _line)


def no_show(referral_id: ReferralId, as_: As, directory: Dir = Path(".")) -> None:
    """Record that the referred patient missed the held or booked slot, after its time (a doctor
    or clerk of the target); the slot is free again.

    Example: medalliance referral no-show REF-1 --as Clerk1@TertiaryHospitalB -d demo
    """
    with session(directory, as_) as s:
        done = s.submit("referral", "MarkNoShow", referral_id)
    show_committed(done, _line)


def sweep(as_: As, directory: Dir = Path(".")) -> None:
    """Free every slot held by a referral left unanswered past its acceptance deadline (any
    member; the alarm runner does it too).

    Example: medalliance referral sweep-holds --as Auditor1@DistrictHC -d demo
    """
    with session(directory, as_) as s:
        report = sweep_holds(s.network, s.caller.msp_id, s.caller.user)
    found = {
        "released": [{"referralId": r, "txId": t} for r, t in report.released],
        "skipped": report.skipped,
    }
    show_result(found, _sweep_text)


def _sweep_text(found: dict[str, Any]) -> str:
    lines = [
        f"hold of referral {r['referralId']} released (LAPSED); tx {r['txId']}"
        for r in found["released"]
    ]
    return "\n".join(
        [*lines, f"{len(found['released'])} released, {len(found['skipped'])} skipped"]
    )


def _line(hold: dict[str, Any]) -> str:
    return f"slot {hold['slot']} of {hold['resourceId']} (referral {hold['referralId']}): {hold['status']}"


def _flat(hold: dict[str, Any]) -> dict[str, Any]:
    trail = " → ".join(f"{e['status']} {e['at']} by {e['by']}" for e in hold["history"])
    return {k: v for k, v in hold.items() if k != "history"} | {"history": trail}
