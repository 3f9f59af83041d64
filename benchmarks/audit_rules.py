"""How fast the audit rules (audit/rules.py) judge facts: facts per second through `RuleEngine`.

Run: `.venv/bin/python benchmarks/audit_rules.py --facts 100000`.
A synthetic month of activity, in blocks of 50 facts: applications (reviewed, some late),
referrals up and back (some never accepted, some ping-ponging), records shared and decrypted (a
few by organisations without a grant). Measures the pure engine on one core — what the alarm
runner adds on top of reading blocks and turning them into facts. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time
from collections import Counter

from medalliance.audit.facts import Fact
from medalliance.audit.rules import RuleEngine

HOSPITALS = [f"Hospital{i:02d}MSP" for i in range(12)]
START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def synthetic(count: int, seed: int) -> list[Fact]:
    rng = random.Random(seed)
    facts: list[Fact] = []
    seconds = 30 * 24 * 3600 / count
    for n in range(count):
        when = (START + dt.timedelta(seconds=n * seconds)).isoformat(timespec="milliseconds")
        when = when.replace("+00:00", "Z")
        origin, target = rng.sample(HOSPITALS, 2)
        item = rng.randrange(count // 4 + 1)
        kind, subject, attrs = rng.choice(
            [
                ("application.submitted", f"APP-{item}", {"hospital": origin}),
                ("application.reviewed", f"APP-{item}", {"status": "APPROVED"}),
                ("referral.created", f"REF-{item}",
                 {"from_hospital": origin, "to_hospital": target, "visit_no": f"V-{item % 500}"}),
                ("referral.accepted", f"REF-{item}", {}),
                ("record.shared", f"REC-{item}", {"authorised": f"{origin},{target}"}),
                ("record.accessed", f"REC-{item}", {"org": origin, "action": "decrypt"}),
            ]
        )  # fmt: skip
        facts.append(
            Fact(kind, f"{n:064x}", n // 50, n % 50, when, origin, "", subject,
                 tuple(sorted(attrs.items())))
        )  # fmt: skip
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--facts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    facts = synthetic(args.facts, args.seed)
    engine = RuleEngine()
    started = time.perf_counter()
    raised = []
    for start in range(0, len(facts), 50):
        block = facts[start : start + 50]
        raised += engine.step(block, block[-1].timestamp)
    elapsed = time.perf_counter() - started
    print(f"{len(facts)} facts in {len(facts) // 50} blocks: {elapsed:.2f} s, "
          f"{len(facts) / elapsed:,.0f} facts/s; alarms {dict(Counter(a.rule_id for a in raised))}")  # fmt: skip


if __name__ == "__main__":
    main()
