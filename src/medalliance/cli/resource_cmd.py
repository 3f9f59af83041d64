"""`medalliance resource ...`: shared equipment, experts and beds.

A hospital publishes a resource's slots; another hospital books a slot, which the owner confirms
or declines and the requester may cancel (`resource` contract). Examination results are
recognised across hospitals with `medalliance result ...` (cli/result_cmd.py).
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from medalliance.alliance.resource import DECLINE_REASONS
from medalliance.cli.alliance_cmd import (
    As,
    Dir,
    rows_table,
    session,
    show_committed,
    show_result,
)

app = typer.Typer(
    help="Share equipment, experts and beds (resource contract); results: `medalliance result`.",
    no_args_is_help=True,
)


class Kind(StrEnum):
    EQUIPMENT = "EQUIPMENT"
    EXPERT = "EXPERT"
    BED = "BED"
    OUTPATIENT = "OUTPATIENT"


ResourceId = Annotated[str, typer.Argument(help="The resource id.", show_default=False)]
BookingId = Annotated[str, typer.Argument(help="The booking id.", show_default=False)]


@app.command("publish")
def publish(
    resource_id: ResourceId,
    as_: As,
    kind: Annotated[
        Kind, typer.Option("--kind", case_sensitive=False, help="What it is.", show_default=False)
    ],
    description: Annotated[
        str, typer.Option("--description", help="A short description.", show_default=False)
    ],
    slot: Annotated[
        list[str],
        typer.Option(
            "--slot", help="A bookable slot, e.g. 2026-12-01T09:00 (repeat).", metavar="S"
        ),
    ],
    directory: Dir = Path("."),
) -> None:
    """Offer a resource of your hospital to the alliance (a doctor or clerk).

    Example: medalliance resource publish MRI-1 --kind EQUIPMENT --description "3T MRI" --slot 2026-12-01T09:00 --slot 2026-12-01T10:00 --as Clerk1@TertiaryHospitalA -d demo
    """
    with session(directory, as_) as s:
        done = s.submit(
            "resource", "PublishResource", resource_id, s.caller.msp_id, kind.value,
            description, json.dumps(slot),
        )  # fmt: skip
    show_committed(
        done,
        lambda r: (
            f"resource {r['resourceId']} ({r['kind']}) published with {len(r['slots'])} slot(s)"
        ),
    )


@app.command("withdraw")
def withdraw(resource_id: ResourceId, as_: As, directory: Dir = Path(".")) -> None:
    """Take your resource off the alliance: no new bookings.

    Example: medalliance resource withdraw MRI-1 --as Clerk1@TertiaryHospitalA -d demo
    """
    with session(directory, as_) as s:
        done = s.submit("resource", "WithdrawResource", resource_id)
    show_committed(done, lambda r: f"resource {r['resourceId']} {r['status']}")


@app.command("list")
def list_resources(
    as_: As,
    kind: Annotated[
        Kind | None, typer.Option("--kind", case_sensitive=False, help="Only this kind.")
    ] = None,
    directory: Dir = Path("."),
) -> None:
    """The alliance's open resources with their free slots.

    Example: medalliance resource list --kind EQUIPMENT --as User1@SecondaryHospitalA -d demo
    """
    with session(directory, as_) as s:
        found = s.evaluate("resource", "ListResources", kind.value if kind else "")
    show_result(
        found,
        lambda rows: rows_table(
            "open resources",
            ("resource", "hospital", "kind", "description", "free slots"),
            [
                (
                    r["resourceId"],
                    r["hospital"],
                    r["kind"],
                    r["description"],
                    ", ".join(r["freeSlots"]) or "none",
                )
                for r in rows
            ],
            "no open resources",
        ),
    )


@app.command("slots")
def slots(resource_id: ResourceId, as_: As, directory: Dir = Path(".")) -> None:
    """Every slot of a resource: FREE, HELD (by a referral) or BOOKED; who holds it is shown
    to the owner, the holder and their regulators.

    Example: medalliance resource slots CT-1 --as User1@SecondaryHospitalA -d demo
    """
    with session(directory, as_) as s:
        found = s.evaluate("resource", "SlotsOf", resource_id)
    show_result(
        found,
        lambda rows: rows_table(
            f"slots of {resource_id}",
            ("slot", "state", "referral", "booking"),
            [
                (r["slot"], r["state"], r.get("referralId", ""), r.get("bookingId", ""))
                for r in rows
            ],
            f"{resource_id} has no slots",
        ),
    )


@app.command("book")
def book(
    booking_id: BookingId,
    as_: As,
    resource: Annotated[
        str, typer.Option("--resource", help="The resource id.", show_default=False)
    ],
    slot: Annotated[str, typer.Option("--slot", help="The slot.", show_default=False)],
    visit: Annotated[
        str, typer.Option("--visit", help="The visit it is for (held by your hospital).")
    ] = "",
    directory: Dir = Path("."),
) -> None:
    """Request a slot of another hospital's resource; the owner confirms or declines.

    Example: medalliance resource book BK-1 --resource MRI-1 --slot 2026-12-01T09:00 --visit V-1001 --as Clerk1@SecondaryHospitalA -d demo
    """
    with session(directory, as_) as s:
        done = s.submit(
            "resource", "RequestBooking", booking_id, resource, s.caller.msp_id, slot, visit
        )
    show_committed(done, _booking_line)


@app.command("confirm")
def confirm(booking_id: BookingId, as_: As, directory: Dir = Path(".")) -> None:
    """Confirm a booking of your resource.

    Example: medalliance resource confirm BK-1 --as Clerk1@TertiaryHospitalA -d demo
    """
    with session(directory, as_) as s:
        done = s.submit("resource", "ConfirmBooking", booking_id)
    show_committed(done, _booking_line)


@app.command("decline")
def decline(
    booking_id: BookingId,
    as_: As,
    reason_code: Annotated[
        str,
        typer.Option(
            "--reason-code", help=f"Why: {', '.join(DECLINE_REASONS)}.", show_default=False
        ),
    ],
    directory: Dir = Path("."),
) -> None:
    """Decline a booking of your resource; the slot is free again.

    Example: medalliance resource decline BK-1 --reason-code EQUIPMENT_UNAVAILABLE --as Clerk1@TertiaryHospitalA -d demo
    """
    with session(directory, as_) as s:
        done = s.submit("resource", "DeclineBooking", booking_id, reason_code)
    show_committed(done, _booking_line)


@app.command("cancel")
def cancel(booking_id: BookingId, as_: As, directory: Dir = Path(".")) -> None:
    """Cancel a booking your hospital requested; the slot is free again.

    Example: medalliance resource cancel BK-1 --as Clerk1@SecondaryHospitalA -d demo
    """
    with session(directory, as_) as s:
        done = s.submit("resource", "CancelBooking", booking_id)
    show_committed(done, _booking_line)


def _booking_line(booking: dict[str, Any]) -> str:
    return (
        f"booking {booking['bookingId']} of {booking['resourceId']} at {booking['slot']}: "
        f"{booking['status']}"
    )
