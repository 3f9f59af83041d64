"""`medalliance result ...`: mutual recognition of examination results (检查检验结果互认).

A commission publishes its rules (catalogue, validity windows, quality levels) from a YAML file;
the performing hospital records each result (the report stays sealed in the privacy module);
before ordering, another hospital asks what is recognised for its patient, requests a result
(then `privacy grant` by the performing hospital and `privacy fetch`, which logs the access), or
orders a duplicate with a reason (the `resource` contract, docs/alliance.md §2).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer

from medalliance.alliance.recognition import DUPLICATE_REASONS
from medalliance.app.recognition_rules_file import load_rules, rules_argument
from medalliance.cli.alliance_cmd import (
    As,
    Dir,
    record_table,
    rows_table,
    session,
    show_committed,
    show_result,
)

app = typer.Typer(
    help="Recognise examination results across hospitals (resource contract).",
    no_args_is_help=True,
)

ResultId = Annotated[str, typer.Argument(help="The result id.", show_default=False)]
Code = Annotated[
    str,
    typer.Option("--code", help="The examination: a LOINC or catalogue code.", show_default=False),
]
Visit = Annotated[
    str,
    typer.Option("--visit", help="Your visit of the patient (the relation).", show_default=False),
]


@app.command("publish-rules")
def publish_rules(
    as_: As,
    file: Annotated[Path, typer.Option("--file", help="The rules YAML.", show_default=False)],
    directory: Dir = Path("."),
) -> None:
    """Publish your commission's recognition rules (a reviewer): the next version.

    Example: medalliance result publish-rules --file networks/recognition-rules.yaml --as Reviewer1@DistrictHC -d demo
    """
    rules = load_rules(file)
    with session(directory, as_) as s:
        msp_of = {o.name: o.msp_id for o in s.network.layout.config.organizations}
        done = s.submit("resource", "SetRecognitionRules", rules_argument(rules, msp_of))
    show_committed(
        done,
        lambda r: (
            f"recognition rules v{r['version']} of {r['regulator']}: {len(r['catalogue'])} "
            f"examination(s), {len(r['levels'])} hospital(s) graded"
        ),
    )


@app.command("rules")
def rules(
    regulator: Annotated[str, typer.Argument(help="The commission (name or MSP id).")],
    as_: As,
    directory: Dir = Path("."),
) -> None:
    """A commission's recognition rules in force.

    Example: medalliance result rules DistrictHC --as User1@SecondaryHospitalA -d demo
    """
    with session(directory, as_) as s:
        found = s.evaluate("resource", "RecognitionRules", s.msp_id(regulator))
    show_result(found, lambda r: record_table(f"recognition rules of {r['regulator']}", r))


@app.command("record")
def record(
    result_id: ResultId,
    as_: As,
    patient: Annotated[str, typer.Option("--patient", help="The patient's pseudonym.")],
    code: Code,
    performed_on: Annotated[
        str, typer.Option("--performed-on", help="The date performed, YYYY-MM-DD.")
    ],
    record_id: Annotated[
        str, typer.Option("--record", help="The sealed report's record id (`privacy share`).")
    ],
    directory: Dir = Path("."),
) -> None:
    """Register a result your hospital performed (a doctor or clerk).

    Example: medalliance result record RES-1 --patient 9f86d081884c7d65 --code 718-7 --performed-on 2026-11-20 --record R-7 --as User1@TertiaryHospitalA -d demo
    """
    with session(directory, as_) as s:
        done = s.submit(
            "resource", "RecordResult", result_id, patient, code, performed_on, record_id,
            s.caller.msp_id,
        )  # fmt: skip
    show_committed(
        done, lambda r: f"result {r['resultId']} ({r['code']}, {r['performedOn']}) recorded"
    )


@app.command("recognised")
def recognised(
    as_: As,
    patient: Annotated[str, typer.Option("--patient", help="The patient's pseudonym.")],
    code: Code,
    visit: Annotated[
        str, typer.Option("--visit", help="Your visit of the patient ('' for a commission).")
    ] = "",
    as_of: Annotated[str, typer.Option("--as-of", help="The date (default: today, UTC).")] = "",
    directory: Dir = Path("."),
) -> None:
    """Already done? The patient's results of this examination still valid and recognised.

    Example: medalliance result recognised --patient 9f86d081884c7d65 --code 718-7 --visit V-1001 --as User1@SecondaryHospitalA -d demo
    """
    day = as_of or dt.datetime.now(dt.UTC).date().isoformat()
    with session(directory, as_) as s:
        found = s.evaluate("resource", "RecognisedResults", patient, code, day, visit)
    show_result(found, lambda rows: _results_table(rows, code, day))


@app.command("request")
def request(result_id: ResultId, as_: As, visit: Visit, directory: Dir = Path(".")) -> None:
    """Take over a recognised result instead of repeating the examination; the performing
    hospital then grants its record (`privacy grant`) and you `privacy fetch` it.

    Example: medalliance result request RES-1 --visit V-1001 --as User1@SecondaryHospitalA -d demo
    """
    with session(directory, as_) as s:
        done = s.submit("resource", "RequestResult", result_id, visit)
    show_committed(
        done,
        lambda r: (
            f"result {r['resultId']} requested from {r['hospital']}: it grants record "
            f"{r['recordId']}, then `privacy fetch --record {r['recordId']}`"
        ),
    )


@app.command("order-duplicate")
def order_duplicate(
    order_id: Annotated[str, typer.Argument(help="The order id.", show_default=False)],
    as_: As,
    visit: Visit,
    code: Code,
    reason_code: Annotated[
        str, typer.Option("--reason-code", help=f"Why: {', '.join(DUPLICATE_REASONS)}.")
    ],
    note: Annotated[
        str, typer.Option("--note", help="A sealed note's record id (needed with OTHER).")
    ] = "",
    directory: Dir = Path("."),
) -> None:
    """Order an examination again although a recognised result exists (a doctor): the reason
    is recorded for the commission's audit.

    Example: medalliance result order-duplicate ORD-1 --visit V-1001 --code 718-7 --reason-code CONDITION_CHANGED --as User1@SecondaryHospitalA -d demo
    """
    with session(directory, as_) as s:
        done = s.submit("resource", "OrderDespiteRecognised", order_id, visit, code, reason_code, note)  # fmt: skip
    show_committed(
        done,
        lambda r: (
            f"order {r['orderId']} ({r['code']}) recorded with reason {r['reasonCode']}; "
            f"recognised: {', '.join(r['recognised'])}"
        ),
    )


def _results_table(rows: list[dict[str, Any]], code: str, day: str) -> Any:
    return rows_table(
        f"recognised results of {code} on {day}",
        ("result", "hospital", "level", "performed", "valid until", "record"),
        [
            (
                r["resultId"],
                r["hospital"],
                r["level"],
                r["performedOn"],
                r["validUntil"],
                r["recordId"],
            )
            for r in rows
        ],
        f"no recognised result of {code} on {day}: order it",
    )
