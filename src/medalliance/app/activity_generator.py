"""A month of alliance activity, generated from a seed, and the ground truth it produced.

What the audit module is tested and benchmarked on (issue 14): on an embedded alliance whose
clock this module drives, hundreds of referrals across all hospitals — upward with an
application to the regulator (some rejected with reason codes, some reviewed or accepted late),
downward for rehabilitation, some refused by the target, some still open when the month ends —
examination results recorded for recognition, settlements under the hospitals' agreements, one
ping-pong patient (referred up, down and up again between the same two hospitals within days) and one
unauthorised access attempt (refused by the contract, then forced onto the ledger, where every
peer invalidates it). Every call goes through the real contracts (endorsement, ordering,
validation); only the clock is ours, so transaction timestamps are the generated ones.

`generate_month` returns `MonthTruth`: what was committed, per referral, application, result
and access, and `counts()` — the figures per hospital a correct derivation must reproduce
exactly. Same seed and config, same truth. No real patient: references are hashes of the seed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import itertools
import json
import random
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fabric_protos.peer import transaction_pb2

from medalliance.app.forged_access import forge_access
from medalliance.errors import Conflict, ContractError, InvalidArgument
from medalliance.node.config import NetworkConfig, load_network_config
from medalliance.node.embedded import EmbeddedNetwork

CHANNEL = "alliance"
DOCTOR, CLERK, REVIEWER = "User1", "Clerk1", "Reviewer1"
# The agreements' terms (settlement contract): cents per completed referral and who pays.
TERMS = {"UP": {"amountCents": 5000, "payer": "target"}, "DOWN": {"amountCents": 2000, "payer": "origin"}}  # fmt: skip
REVIEW_REJECTIONS = ("NOT_INDICATED", "TREAT_LOCALLY", "TARGET_NO_CAPACITY", "INCOMPLETE_SUMMARY")
REFERRAL_REJECTIONS = ("NO_BED", "SERVICE_NOT_OFFERED", "PATIENT_DECLINED")
EXAMS = ("CT", "MRI", "ECG", "LAB", "ULTRASOUND")
# The examination codes the regulators' recognition rules list for them (docs/alliance.md §2).
EXAM_CODES = {"CT": "24627-2", "MRI": "MR.HEAD", "ECG": "ECG.12LEAD", "LAB": "718-7",
              "ULTRASOUND": "US.ABDOMEN"}  # fmt: skip
# What counts as late in the truth (docs/audit.md): the alarm rules (audit/rules.py) may use other limits;
# the raw times are in the truth too.
LATE_REVIEW = dt.timedelta(hours=24)
LATE_ACCEPTANCE = dt.timedelta(hours=48)
# Calls of one episode are at least MIN_GAP apart; calls within BATCH_WINDOW share a block.
MIN_GAP = dt.timedelta(hours=1)
BATCH_WINDOW = dt.timedelta(minutes=55)


@dataclass(frozen=True, slots=True)
class ApplicationTruth:
    application_id: str
    hospital: str
    target: str
    regulator: str
    status: str  # SUBMITTED (not reviewed by the month's end), APPROVED or REJECTED
    reason_code: str
    submitted_at: str
    reviewed_at: str  # "" while submitted


@dataclass(frozen=True, slots=True)
class ReferralTruth:
    referral_id: str
    from_hospital: str
    to_hospital: str
    direction: str  # UP or DOWN
    status: str  # REFERRED, ACCEPTED, REJECTED or COMPLETED at the month's end
    reason_code: str  # the target's, when REJECTED
    referred_at: str
    decided_at: str  # accepted or rejected ("" while referred)
    completed_at: str
    payer: str  # of the settlement ("" when none was executed)
    payee: str
    amount_cents: int


@dataclass(frozen=True, slots=True)
class MonthTruth:
    """What the generator committed in `period` (all times ISO 8601 UTC, milliseconds)."""

    period: str
    seed: int
    hospitals: tuple[str, ...]
    applications: tuple[ApplicationTruth, ...]
    referrals: tuple[ReferralTruth, ...]
    results_shared: tuple[tuple[str, str], ...]  # (result id, recording hospital)
    accesses: tuple[tuple[str, str, str], ...]  # (record id, organisation, action): VALID
    refused_access: tuple[tuple[str, str], ...]  # (record id, organisation): refused
    forged_access: tuple[tuple[str, str, str, str], ...]  # (tx id, org, record, code): INVALID
    ping_pong: tuple[str, ...]  # the referral ids of the ping-pong patient, in order
    tx_ids: tuple[str, ...] = field(repr=False)  # every VALID transaction of the period

    def counts(self) -> dict[tuple[str, str], int]:
        """Integer figures (indicator, hospital MSP id or "" for the region) — see docs."""
        out: dict[tuple[str, str], int] = {}

        def add(indicator: str, hospital: str, n: int = 1) -> None:
            for who in (hospital, ""):
                out[(indicator, who)] = out.get((indicator, who), 0) + n

        for app in self.applications:
            add("applications.submitted", app.hospital)
            if app.status != "SUBMITTED":
                add(f"applications.{app.status.lower()}", app.hospital)
                if _hours(app.submitted_at, app.reviewed_at) > LATE_REVIEW:
                    add("applications.reviewed_late", app.hospital)
            if app.status == "REJECTED":
                add(f"applications.rejected.{app.reason_code}", app.hospital)
        for ref in self.referrals:
            side = "upward" if ref.direction == "UP" else "downward"
            add(f"referrals.{side}", ref.from_hospital)
            add(f"referrals.{side}_received", ref.to_hospital)
            for status in ("ACCEPTED", "REJECTED", "COMPLETED"):
                reached = ref.status == status or (
                    status == "ACCEPTED" and ref.status == "COMPLETED"
                )
                if reached:
                    add(f"referrals.{status.lower()}", ref.to_hospital)
            if ref.decided_at and _hours(ref.referred_at, ref.decided_at) > LATE_ACCEPTANCE:
                add("referrals.decided_late", ref.to_hospital)
            if ref.amount_cents:
                add("settlement.paid_cents", ref.payer, ref.amount_cents)
                add("settlement.received_cents", ref.payee, ref.amount_cents)
        for _, hospital in self.results_shared:
            add("results.shared", hospital)
        for _, org, _ in self.accesses:
            add("records.accessed", org)
        return out


def _hours(start: str, end: str) -> dt.timedelta:
    return _parse(end) - _parse(start)


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso(when: dt.datetime) -> str:
    """As the contracts write times (`now_iso`)."""
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ManualClock:
    """The embedded network's clock, set by the generator before each call."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def period_start(period: str) -> dt.datetime:
    try:
        start = dt.datetime.strptime(period, "%Y-%m").replace(tzinfo=dt.UTC)
    except ValueError:
        raise InvalidArgument(f"period {period!r} must be YYYY-MM, e.g. 2026-11") from None
    return start


def period_end(period: str) -> dt.datetime:
    start = period_start(period)
    return (start + dt.timedelta(days=32)).replace(day=1)


def generate_month(
    config_path: Path,
    data_dir: Path,
    *,
    period: str = "2026-11",
    seed: int = 14,
    episodes: int = 160,
    on_progress: Callable[[str], None] | None = None,
) -> MonthTruth:
    """Create the alliance of `config_path` in `data_dir` (which must not hold a network yet)
    as of the day before `period`, and commit a month of activity; its truth.

    `episodes` patients are treated: about two thirds start at a secondary hospital (upward,
    some followed by a downward referral), the rest at a tertiary one (downward only).
    Raises `InvalidArgument` for a folder that already holds a network or a bad period.
    """
    if (data_dir / "network.yaml").exists():
        raise InvalidArgument(f"{data_dir} already holds a network; generate into a new folder")
    if episodes < 4:
        raise InvalidArgument("episodes must be at least 4")
    config = load_network_config(config_path)
    start = period_start(period)
    clock = ManualClock(start - dt.timedelta(days=1))
    with EmbeddedNetwork.open(config, data_dir, clock=clock, on_progress=on_progress) as network:
        month = _Month(network, config, clock, period, seed)
        month.agreements()
        month.recognition_rules()
        month.run(episodes)
        return month.truth()


@dataclass(frozen=True, slots=True)
class _Call:
    at: dt.datetime
    org: str
    user: str
    contract: str
    function: str
    args: tuple[str, ...]
    refused_ok: bool = False  # the attempt must be refused by the contract
    forged: bool = False  # built and "endorsed" by the caller itself (app/forged_access.py)


# An episode is a generator of calls; each call is sent the tx id it committed as (or "" when
# refused), so the episode can decide its next step from what happened.
Episode = Generator[_Call, str, None]
# Steps that end with a time (when the patient was referred, treated) or None (they were not).
Timed = Generator[_Call, str, dt.datetime | None]


class _Month:
    """The scheduler: calls of all episodes in time order, a block per batch of independent
    calls (a call waits for the commit of its episode's previous call)."""

    def __init__(
        self,
        network: EmbeddedNetwork,
        config: NetworkConfig,
        clock: ManualClock,
        period: str,
        seed: int,
    ) -> None:
        self.network = network
        self.clock = clock
        self.period = period
        self.seed = seed
        self.rng = random.Random(seed)  # noqa: S311 - reproducible activity, not secrets
        self.start, self.end = period_start(period), period_end(period)
        by_type: dict[str, list[str]] = {}
        for org in config.organizations:
            by_type.setdefault(org.type, []).append(org.msp_id)
        self.secondary = sorted(by_type.get("secondary", []))
        self.tertiary = sorted(by_type.get("tertiary", []))
        if len(self.secondary) < 2 or len(self.tertiary) < 2:
            raise InvalidArgument("the month needs two secondary and two tertiary hospitals")
        self.regulator = {
            o.msp_id: config.organization(o.regulator).msp_id
            for o in config.organizations
            if o.regulator
        }
        self.applications: dict[str, ApplicationTruth] = {}
        self.referrals: dict[str, ReferralTruth] = {}
        self.results: list[tuple[str, str]] = []
        self.accesses: list[tuple[str, str, str]] = []
        self.refused: list[tuple[str, str]] = []
        self.forged: list[tuple[str, str, str, str]] = []
        self.ping_pong: list[str] = []
        self.tx_ids: list[str] = []
        self.agreement: dict[frozenset[str], bool] = {}
        self.order = itertools.count()

    # --- set-up -----------------------------------------------------------------------------

    def agreements(self) -> None:
        """Agreements between every secondary-tertiary pair but the last one (its completed
        referrals settle nothing), signed the day before the month."""
        pairs = [(s, t) for s in self.secondary for t in self.tertiary][:-1]
        for s, t in pairs:
            agreement_id = f"AG-{s}-{t}"
            self._now(self.clock.now + dt.timedelta(minutes=1))
            self._submit(s, CLERK, "settlement", "ProposeAgreement", agreement_id, t,
                         json.dumps(TERMS))  # fmt: skip
            self._submit(t, CLERK, "settlement", "AcceptAgreement", agreement_id)
            self.agreement[frozenset((s, t))] = True

    def recognition_rules(self) -> None:
        """Each supervising regulator publishes its recognition rules (every examination valid
        90 days from a level B department; its hospitals graded A) before the month."""
        for regulator in sorted(set(self.regulator.values())):
            hospitals = sorted(h for h, r in self.regulator.items() if r == regulator)
            rules = {"catalogue": {c: {"validityDays": 90, "minLevel": "B"} for c in EXAM_CODES.values()},
                     "levels": {h: dict.fromkeys(EXAM_CODES.values(), "A") for h in hospitals}}  # fmt: skip
            self._now(self.clock.now + dt.timedelta(minutes=1))
            self._submit(regulator, REVIEWER, "resource", "SetRecognitionRules", json.dumps(rules))

    # --- scheduling -------------------------------------------------------------------------

    def run(self, episodes: int) -> None:
        queue: list[tuple[dt.datetime, int, int, _Call]] = []
        running: dict[int, Episode] = {}
        for number, episode in enumerate(self._episodes(episodes)):
            running[number] = episode
            first = next(episode, None)
            if first is not None:
                heapq.heappush(queue, (first.at, next(self.order), number, first))
        pending: dict[int, tuple[str, _Call]] = {}  # episode -> its uncommitted tx
        while queue or pending:
            if not queue:
                self._commit(pending, running, queue)
                continue
            at, key, number, call = heapq.heappop(queue)
            oldest = min((c.at for _, c in pending.values()), default=at)
            # A block per batch of calls close in time, so that the ledger's times keep
            # increasing: every episode's next call comes at least MIN_GAP after its last.
            if number in pending or at - oldest >= BATCH_WINDOW:
                heapq.heappush(queue, (at, key, number, call))
                self._commit(pending, running, queue)
                continue
            if at >= self.end:
                continue  # the month is over: the episode stays where it is
            self._now(at)
            if call.forged:
                pending[number] = (forge_access(self.network, CHANNEL, call.org, call.user,
                                                call.args[0]), call)  # fmt: skip
                continue
            try:
                tx_id, _ = self.network.client(call.org, call.user).submit_async(
                    CHANNEL, call.contract, call.function, *call.args
                )
            except ContractError:
                if not call.refused_ok:
                    raise
                self._resume(number, "", running, queue)
                continue
            if call.refused_ok:
                raise AssertionError(f"{call.function} by {call.org} was not refused")
            pending[number] = (tx_id, call)
            self.tx_ids.append(tx_id)

    def _commit(
        self,
        pending: dict[int, tuple[str, _Call]],
        running: dict[int, Episode],
        queue: list[tuple[dt.datetime, int, int, _Call]],
    ) -> None:
        self.network.cut_blocks(CHANNEL)
        done = list(pending.items())
        pending.clear()
        for number, (tx_id, call) in done:
            status = self.network.client(call.org, call.user).status(CHANNEL, tx_id)
            if call.forged:
                if status.valid:
                    raise AssertionError(f"the forged {call.function} {tx_id} was VALID")
                code = transaction_pb2.TxValidationCode.Name(status.code)
                self.forged.append((tx_id, call.org, call.args[0], str(code)))
            elif not status.valid:
                raise Conflict(f"generated transaction {tx_id} ({call.function}) was invalidated")
            self._resume(number, tx_id, running, queue)

    def _resume(
        self,
        number: int,
        tx_id: str,
        running: dict[int, Episode],
        queue: list[tuple[dt.datetime, int, int, _Call]],
    ) -> None:
        try:
            nxt = running[number].send(tx_id)
        except StopIteration:
            return
        assert nxt.at >= self.clock.now, "an episode's calls are MIN_GAP apart"
        heapq.heappush(queue, (nxt.at, next(self.order), number, nxt))

    def _now(self, at: dt.datetime) -> None:
        self.clock.now = at

    def _submit(self, org: str, user: str, contract: str, function: str, *args: str) -> str:
        result = self.network.client(org, user).submit(CHANNEL, contract, function, *args)
        if not result.valid:
            raise Conflict(f"generated transaction {result.tx_id} ({function}) was invalidated")
        return result.tx_id

    # --- episodes ---------------------------------------------------------------------------

    def _episodes(self, count: int) -> Iterator[Episode]:
        yield self._ping_pong()
        yield self._unauthorised_access()
        for number in range(2, count):
            day = self.rng.uniform(0, 27)
            when = self.start + dt.timedelta(minutes=int(day * 24 * 60))
            if self.rng.random() < 0.65:
                yield self._upward(number, when, self.rng.choice(self.secondary),
                                   self.rng.choice(self.tertiary))  # fmt: skip
            else:
                yield self._downward_only(number, when, self.rng.choice(self.tertiary),
                                          self.rng.choice(self.secondary))  # fmt: skip

    def _ids(self, number: int) -> dict[str, str]:
        tag = f"M{self.seed}-{number:04d}"
        ref = hashlib.sha256(f"medalliance month {self.seed} patient {number}".encode())
        return {"visit": f"V-{tag}", "record": f"R-{tag}", "feedback": f"F-{tag}",
                "result": f"X-{tag}", "app": f"APP-{tag}", "ref": f"REF-{tag}",
                "patient": ref.hexdigest()[:32], "tag": tag}  # fmt: skip

    def _admit(self, ids: dict[str, str], at: dt.datetime, org: str, shared_with: str) -> Episode:
        yield _Call(at, org, DOCTOR, "visit", "RegisterVisit", (ids["visit"], ids["patient"], org))
        yield from self._register(at + dt.timedelta(hours=1), org, ids["record"], ids["patient"],
                                  [shared_with])  # fmt: skip

    def _register(
        self, at: dt.datetime, org: str, record_id: str, patient: str, named: list[str]
    ) -> Episode:
        digest = hashlib.sha256(f"sealed package {record_id}".encode()).hexdigest()
        yield _Call(at, org, DOCTOR, "records", "RegisterRecord",
                    (record_id, patient, digest, "[]", json.dumps(named)))  # fmt: skip

    def _upward(
        self, number: int, at: dt.datetime, origin: str, target: str, *, plain: bool = False
    ) -> Episode:
        ids = self._ids(number)
        yield from self._admit(ids, at, origin, target)
        at += dt.timedelta(hours=2)
        if not plain and self.rng.random() < 0.5:
            exam = self.rng.choice(EXAMS)
            yield _Call(at, origin, DOCTOR, "resource", "RecordResult",
                        (ids["result"], ids["patient"], EXAM_CODES[exam],
                         at.date().isoformat(), ids["record"], origin))  # fmt: skip
            self.results.append((ids["result"], origin))
            at += dt.timedelta(hours=1)
        referred = yield from self._apply_and_refer(ids, ids["app"], ids["ref"], at, origin,
                                                    target, plain=plain)  # fmt: skip
        if referred is None:
            return
        done = yield from self._treat(ids, ids["ref"], referred, target, plain=plain)
        if done is not None and (plain or self.rng.random() < 0.5):
            later = done + dt.timedelta(hours=1 if plain else self.rng.randint(1, 24))
            yield from self._refer_down(ids, ids["ref"] + "-D", later, target, origin,
                                        ids["record"], ids["feedback"], plain=plain)  # fmt: skip

    def _apply_and_refer(
        self, ids: dict[str, str], app: str, ref: str, at: dt.datetime, origin: str, target: str,
        *, plain: bool,
    ) -> Timed:  # fmt: skip
        """Apply to the regulator; when approved, refer. The referral's time, or None."""
        regulator = self.regulator[origin]
        yield _Call(at, origin, DOCTOR, "report", "SubmitApplication",
                    (app, ids["visit"], target, ids["record"]))  # fmt: skip
        submitted = at
        self.applications[app] = ApplicationTruth(app, origin, target, regulator, "SUBMITTED",
                                                  "", iso(at), "")  # fmt: skip
        wait = 2 if plain else self.rng.choice([1, 2, 3, 5, 8, 12, 20, 30, 40])
        at = at + dt.timedelta(hours=wait, minutes=self.rng.randint(0, 59))
        reject = not plain and self.rng.random() < 0.15
        reason = self.rng.choice(REVIEW_REJECTIONS) if reject else ""
        decision = "REJECTED" if reject else "APPROVED"
        yield _Call(at, regulator, REVIEWER, "report", "ReviewApplication",
                    (app, decision, reason, ""))  # fmt: skip
        self.applications[app] = ApplicationTruth(app, origin, target, regulator, decision,
                                                  reason, iso(submitted), iso(at))  # fmt: skip
        if reject:
            return None
        at += dt.timedelta(hours=1)
        yield _Call(at, origin, DOCTOR, "referral", "Refer",
                    (ref, app, ids["visit"], origin, target, "UP", ids["record"]))  # fmt: skip
        self._referral(ref, origin, target, "UP", at)
        return at

    def _treat(
        self, ids: dict[str, str], ref: str, at: dt.datetime, target: str, *, plain: bool
    ) -> Timed:
        """The target decides (and reads the package), then completes. Completion time or None."""
        wait = 3 if plain else self.rng.choice([1, 2, 4, 6, 10, 18, 30, 50, 60])
        at += dt.timedelta(hours=wait, minutes=self.rng.randint(0, 59))
        origin = self.referrals[ref].from_hospital
        if not plain and self.rng.random() < 0.08:
            reason = self.rng.choice(REFERRAL_REJECTIONS)
            yield _Call(at, target, DOCTOR, "referral", "RejectReferral", (ref, reason, ""))
            self._update(ref, status="REJECTED", reason_code=reason, decided_at=iso(at))
            return None
        yield _Call(at, target, DOCTOR, "referral", "AcceptReferral", (ref,))
        self._update(ref, status="ACCEPTED", decided_at=iso(at))
        record = ids["record"]
        yield _Call(at + dt.timedelta(hours=1), target, DOCTOR, "records", "LogAccess",
                    (record, "1", "decrypt"))  # fmt: skip
        self.accesses.append((record, target, "decrypt"))
        at += dt.timedelta(hours=24 if plain else self.rng.randint(24, 96))
        feedback = ids["feedback"]
        if self.referrals[ref].direction == "UP":
            yield from self._register(at, target, feedback, ids["patient"], [origin])
        at += dt.timedelta(hours=1)
        yield _Call(at, target, DOCTOR, "referral", "CompleteReferral", (ref, feedback))
        settles = frozenset((origin, target)) in self.agreement
        payer, payee, cents = "", "", 0
        if settles:
            term = TERMS[self.referrals[ref].direction]
            to_target = term["payer"] == "target"
            payer, payee = (target, origin) if to_target else (origin, target)
            cents = int(str(term["amountCents"]))
        self._update(ref, status="COMPLETED", completed_at=iso(at), payer=payer, payee=payee,
                     amount_cents=cents)  # fmt: skip
        return at

    def _refer_down(
        self, ids: dict[str, str], ref: str, at: dt.datetime, origin: str, target: str,
        record: str, feedback: str, *, plain: bool,
    ) -> Timed:  # fmt: skip
        """A downward referral (no application: the default rule) and its treatment."""
        yield _Call(at, origin, DOCTOR, "referral", "Refer",
                    (ref, "", ids["visit"], origin, target, "DOWN", record))  # fmt: skip
        self._referral(ref, origin, target, "DOWN", at)
        done = yield from self._treat(ids, ref, at, target, plain=plain)
        return done

    def _downward_only(self, number: int, at: dt.datetime, origin: str, target: str) -> Episode:
        """A patient treated at a tertiary hospital, sent to a community hospital to recover;
        the completion cites a second record of the origin's, shared with the target."""
        ids = self._ids(number)
        yield from self._admit(ids, at, origin, target)
        yield from self._register(at + dt.timedelta(hours=2), origin, ids["feedback"],
                                  ids["patient"], [target])  # fmt: skip
        yield from self._refer_down(ids, ids["ref"], at + dt.timedelta(hours=3), origin,
                                    target, ids["record"], ids["feedback"], plain=False)  # fmt: skip

    def _ping_pong(self) -> Episode:
        """Up, down and up again between the first secondary and first tertiary hospital
        within six days: the pattern a rule flags."""
        origin, target = self.secondary[0], self.tertiary[0]
        ids = self._ids(0)
        at = self.start + dt.timedelta(days=2, hours=9)
        first = ids["ref"]
        yield from self._upward(0, at, origin, target, plain=True)
        again = dict(ids, feedback=ids["feedback"])
        at = _parse(self.referrals[first + "-D"].completed_at) + dt.timedelta(hours=2)
        referred = yield from self._apply_and_refer(again, ids["app"] + "-2", first + "-2", at,
                                                    origin, target, plain=True)  # fmt: skip
        assert referred is not None
        self.ping_pong.extend((first, first + "-D", first + "-2"))

    def _unauthorised_access(self) -> Episode:
        """A hospital with no referral or grant tries to log a decrypt of another hospital's
        record: the contract refuses it, so nothing reaches the ledger (the truth says so)."""
        ids = self._ids(1)
        owner, stranger = self.secondary[0], self.secondary[1]
        at = self.start + dt.timedelta(days=10, hours=14)
        yield from self._admit(ids, at, owner, self.tertiary[0])
        yield _Call(at + dt.timedelta(hours=2), stranger, DOCTOR, "records", "LogAccess",
                    (ids["record"], "1", "decrypt"), refused_ok=True)  # fmt: skip
        self.refused.append((ids["record"], stranger))
        # The same hospital then builds the transaction itself, endorsed by its own peer only:
        # ordered, then invalidated by every peer, it writes nothing but stays on the ledger.
        yield _Call(at + dt.timedelta(hours=3), stranger, DOCTOR, "records", "LogAccess",
                    (ids["record"], "1", "decrypt"), forged=True)  # fmt: skip

    # --- truth ------------------------------------------------------------------------------

    def _referral(
        self, ref: str, origin: str, target: str, direction: str, at: dt.datetime
    ) -> None:
        self.referrals[ref] = ReferralTruth(ref, origin, target, direction, "REFERRED", "",
                                            iso(at), "", "", "", "", 0)  # fmt: skip

    def _update(self, ref: str, **changes: str | int) -> None:
        current = self.referrals[ref]
        values = {name: getattr(current, name) for name in ReferralTruth.__slots__}
        values.update(changes)
        self.referrals[ref] = ReferralTruth(**values)

    def truth(self) -> MonthTruth:
        return MonthTruth(
            period=self.period,
            seed=self.seed,
            hospitals=tuple(self.secondary + self.tertiary),
            applications=tuple(self.applications.values()),
            referrals=tuple(self.referrals.values()),
            results_shared=tuple(self.results),
            accesses=tuple(self.accesses),
            refused_access=tuple(self.refused),
            forged_access=tuple(self.forged),
            ping_pong=tuple(self.ping_pong),
            tx_ids=tuple(self.tx_ids),
        )
