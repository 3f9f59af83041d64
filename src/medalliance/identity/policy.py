"""Fabric's signature-policy language: parse to `SignaturePolicyEnvelope`, evaluate, format.

Pure. Grammar and semantics follow Fabric exactly (protocol doc §7.2–7.3): `AND`, `OR`,
`OutOf(n, ...)` over quoted principals `'MSPID.role'` (the last dot separates the role); each
principal occurrence appends an identity, without de-duplication, in Fabric's order (a gate's own
principals after those of its nested gates); evaluation is greedy in rule order over a `used` flag
per signer, so one signature never satisfies two principals.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from fabric_protos.common import policies_pb2
from fabric_protos.msp import msp_principal_pb2
from google.protobuf.message import DecodeError

from medalliance.errors import (
    InvalidArgument,
    MalformedMessage,
    MedallianceError,
    PolicySyntaxError,
)
from medalliance.identity.msp import Identity, MspManager

_ROLES = {
    "member": "MEMBER",
    "admin": "ADMIN",
    "client": "CLIENT",
    "peer": "PEER",
    "orderer": "ORDERER",
}
_PRINCIPAL = re.compile(r"^([A-Za-z0-9.-]+)\.(member|admin|client|peer|orderer)$")
_TOKEN = re.compile(
    r"\s*(?:(?P<word>[A-Za-z]+)|(?P<num>-?[0-9]+)|(?P<str>'[^']*'|\"[^\"]*\")|(?P<punct>[(),]))"
)
_INTEGER = re.compile(r"-?[0-9]+\Z")
_TRAILING_SPACE = re.compile(r"\s*\Z")
_MAX_DEPTH = 64  # nesting bound: deeper policies are mistakes, and recursion must stay bounded
_GATES = {"and": "AND", "or": "OR", "outof": "OUTOF"}
_ROLE_CLASSIFICATION = msp_principal_pb2.MSPPrincipal.Classification.Value("ROLE")
_GATE_SPELLINGS = {"AND", "And", "and", "OR", "Or", "or", "OutOf", "outof", "OUTOF"}


@dataclass(frozen=True, slots=True)
class SignedData:
    """A signature to be checked against a policy: `signature` by `identity` over `data`."""

    data: bytes = field(repr=False)
    identity: bytes = field(repr=False)
    signature: bytes = field(repr=False)


def parse_policy(text: str) -> policies_pb2.SignaturePolicyEnvelope:
    """Compile Fabric DSL text; raises `PolicySyntaxError` saying where and what is wrong."""
    parser = _Parser(text)
    rule = parser.gate()
    parser.expect_end()
    return policies_pb2.SignaturePolicyEnvelope(version=0, identities=parser.identities, rule=rule)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if _TRAILING_SPACE.match(text, pos):
                break
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise PolicySyntaxError(f"policy {text!r}: unexpected character at position {pos}")
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind), m.start(kind)))
            pos = m.end()
        self.i = 0
        self.depth = 0
        self.identities: list[msp_principal_pb2.MSPPrincipal] = []

    def _fail(self, what: str) -> PolicySyntaxError:
        at = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text)
        return PolicySyntaxError(f"policy {self.text!r}: {what} at position {at}")

    def _next(self, kind: str, value: str | None = None) -> str:
        if self.i >= len(self.tokens):
            raise self._fail(f"expected {value or kind}, got the end")
        k, v, _ = self.tokens[self.i]
        if k != kind or (value is not None and v != value):
            raise self._fail(f"expected {value or kind}, got {v!r}")
        self.i += 1
        return v

    def expect_end(self) -> None:
        if self.i != len(self.tokens):
            raise self._fail("unexpected text after the policy")

    def gate(self) -> policies_pb2.SignaturePolicy:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self._fail(f"gates nested deeper than {_MAX_DEPTH}")
        rule = self._gate()
        self.depth -= 1
        return rule

    def _gate(self) -> policies_pb2.SignaturePolicy:
        word = self._next("word")
        if word not in _GATE_SPELLINGS:
            self.i -= 1
            raise self._fail(f"unknown gate {word!r} (use AND, OR or OutOf)")
        gate = _GATES[word.lower()]
        self._next("punct", "(")
        n = None
        if gate == "OUTOF":
            n = self._count()
            self._next("punct", ",")
        args = [self.arg()]
        while self.i < len(self.tokens) and self.tokens[self.i][1] == ",":
            self.i += 1
            args.append(self.arg())
        self._next("punct", ")")
        # Fabric's second pass appends a gate's own principals after those of its nested gates
        # (govaluate evaluates arguments first): OR('A.member', AND('B.member', 'C.member'))
        # has identities [B, C, A] (policyparser_test.go TestComplex1). Copy that order.
        rules = [
            self._signed_by(a) if isinstance(a, msp_principal_pb2.MSPRole) else a for a in args
        ]
        if gate == "AND":
            n = len(rules)
        elif gate == "OR":
            n = 1
        assert n is not None
        if n < 0 or n > len(rules) + 1:  # n = len + 1 is accepted, as Fabric does
            raise PolicySyntaxError(
                f"policy {self.text!r}: OutOf({n}, ...) with {len(rules)} arguments; "
                f"n must be between 0 and {len(rules) + 1}"
            )
        return policies_pb2.SignaturePolicy(
            n_out_of=policies_pb2.SignaturePolicy.NOutOf(n=n, rules=rules)
        )

    def _count(self) -> int:
        """OutOf's N: a number, or a quoted number as Fabric also takes (TestOutOfNumIsString)."""
        if self.i < len(self.tokens) and self.tokens[self.i][0] == "str":
            raw = self.tokens[self.i][1][1:-1].strip()
            if not _INTEGER.match(raw):
                raise self._fail(f"OutOf needs a number first, got {raw!r}")
            self.i += 1
            return int(raw)
        return int(self._next("num"))

    def arg(self) -> policies_pb2.SignaturePolicy | msp_principal_pb2.MSPRole:
        """A nested gate (compiled) or a principal (given its index when its gate closes)."""
        if self.i < len(self.tokens) and self.tokens[self.i][0] == "str":
            raw = self._next("str")[1:-1]
            m = _PRINCIPAL.match(raw)
            if m is None:
                self.i -= 1
                raise self._fail(
                    f"principal {raw!r} is not 'MSPID.role' with role member, admin, client, peer or orderer"
                )
            return msp_principal_pb2.MSPRole(
                msp_identifier=m.group(1),
                role=msp_principal_pb2.MSPRole.MSPRoleType.Value(_ROLES[m.group(2)]),
            )
        return self.gate()

    def _signed_by(self, role: msp_principal_pb2.MSPRole) -> policies_pb2.SignaturePolicy:
        self.identities.append(
            msp_principal_pb2.MSPPrincipal(
                principal_classification=_ROLE_CLASSIFICATION, principal=role.SerializeToString()
            )
        )
        return policies_pb2.SignaturePolicy(signed_by=len(self.identities) - 1)


def format_policy(envelope: policies_pb2.SignaturePolicyEnvelope) -> str:
    """Back to DSL text for display: `parse_policy(format_policy(e)) == e` for parsed policies.

    Raises `InvalidArgument` for envelopes the DSL cannot express (non-ROLE principals, indexes
    out of range).
    """

    def principal(index: int) -> str:
        if not 0 <= index < len(envelope.identities):
            raise InvalidArgument(f"policy rule signed_by {index} names no identity")
        item = envelope.identities[index]
        if item.principal_classification != _ROLE_CLASSIFICATION:
            raise InvalidArgument("only ROLE principals can be written in the policy language")
        role = msp_principal_pb2.MSPRole()
        try:
            role.ParseFromString(item.principal)
        except DecodeError as exc:
            raise MalformedMessage("MSPRole principal", str(exc)) from exc
        name = msp_principal_pb2.MSPRole.MSPRoleType.Name(role.role).lower()
        return f"'{role.msp_identifier}.{name}'"

    def rule(r: policies_pb2.SignaturePolicy, depth: int) -> str:
        if depth > _MAX_DEPTH:
            raise InvalidArgument(f"policy rules nested deeper than {_MAX_DEPTH}")
        if r.WhichOneof("Type") == "signed_by":
            return principal(r.signed_by)
        n, subs = int(r.n_out_of.n), r.n_out_of.rules
        args = ", ".join(rule(x, depth + 1) for x in subs)
        # AND and OR compile to exactly these OutOf forms, so the round trip is exact.
        if n == len(subs) and n > 1:
            return f"AND({args})"
        if n == 1:
            return f"OR({args})"
        return f"OutOf({n}, {args})"

    return rule(envelope.rule, 0)


def evaluate_signature_policy(
    envelope: policies_pb2.SignaturePolicyEnvelope,
    signed: Sequence[SignedData],
    msps: MspManager,
    *,
    at: dt.datetime,
    compiled: bool | None = None,
) -> bool:
    """Whether the valid, distinct signers of `signed` satisfy the policy (Fabric's algorithm).

    Identities that do not deserialize or validate at `at`, repeats of an accepted identity and
    bad signatures are dropped first (`SignatureSetToValidIdentities`); then the rule runs
    greedily with one `used` flag per identity (`cauthdsl.compile`). An envelope Fabric would
    refuse to compile (version ≠ 0, a rule without type, an index out of range) is never
    satisfied (`compiled`: that verdict when the caller keeps it). Never raises for bad
    signatures or identities.
    """
    if not (compiles(envelope) if compiled is None else compiled):
        return False
    return identities_satisfy(envelope, valid_signers(signed, msps, at=at), msps)


def compiles(envelope: policies_pb2.SignaturePolicyEnvelope) -> bool:
    """Whether Fabric would compile the envelope (version 0, typed rules, indexes in range)."""
    return envelope.version == 0 and _compiles(envelope.rule, len(envelope.identities), 0)


def valid_signers(
    signed: Sequence[SignedData], msps: MspManager, *, at: dt.datetime
) -> list[Identity]:
    """The distinct identities of `signed` that deserialize, validate at `at` and whose
    signature verifies, in order (Fabric's `SignatureSetToValidIdentities`). The costly half of
    a policy check: an ImplicitMeta policy computes it once for all its sub-policies."""
    identities: list[Identity] = []
    seen: set[tuple[str, bytes]] = set()
    for item in signed:
        try:
            identity = msps.deserialize(item.identity, at=at)
        except MedallianceError:
            continue
        key = (identity.msp_id, identity.id_hash)
        if key in seen or not identity.verify(item.signature, item.data):
            continue
        seen.add(key)  # only after the signature verified, as Fabric does
        identities.append(identity)
    return identities


# A rule as plain values: a principal's index (signed_by), or (n, sub-rules) for n_out_of.
RuleNode = int | tuple[int, tuple["RuleNode", ...]]


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """A signature policy envelope that compiles, read out of its message once: a policy is
    checked for every transaction of its contract, and reading rules and principals out of
    protobuf on every check cost more than the check."""

    rule: RuleNode
    principals: tuple[tuple[int, bytes], ...]  # (classification, principal bytes)


def compile_policy(envelope: policies_pb2.SignaturePolicyEnvelope) -> CompiledPolicy | None:
    """The envelope as plain values, or None when Fabric would not compile it (never satisfied)."""
    if not compiles(envelope):
        return None
    principals = tuple(
        (int(p.principal_classification), bytes(p.principal)) for p in envelope.identities
    )
    return CompiledPolicy(_node(envelope.rule), principals)


def compiled_policy_satisfied(
    policy: CompiledPolicy, signed: Sequence[SignedData], msps: MspManager, *, at: dt.datetime
) -> bool:
    """`evaluate_signature_policy` of the envelope `policy` was compiled from."""
    identities = valid_signers(signed, msps, at=at)
    principals = policy.principals
    return _greedy(
        policy.rule,
        lambda p, i: msps.satisfies(identities[i], *principals[p]),
        [False] * len(identities),
    )


def identities_satisfy(
    envelope: policies_pb2.SignaturePolicyEnvelope, identities: Sequence[Identity], msps: MspManager
) -> bool:
    """Whether `valid_signers` output satisfies a compiling envelope's rule (greedy)."""
    principals = envelope.identities
    return rule_satisfied(
        envelope.rule,
        len(identities),
        lambda p, i: msps.satisfies_principal(identities[i], principals[p]),
    )


def _compiles(rule: policies_pb2.SignaturePolicy, n_principals: int, depth: int) -> bool:
    kind = rule.WhichOneof("Type")
    if kind == "signed_by":
        return 0 <= int(rule.signed_by) < n_principals
    if kind != "n_out_of" or depth > _MAX_DEPTH:
        return False
    return all(_compiles(sub, n_principals, depth + 1) for sub in rule.n_out_of.rules)


def rule_satisfied(
    rule: policies_pb2.SignaturePolicy, signers: int, matches: Callable[[int, int], bool]
) -> bool:
    """Fabric's greedy rule evaluation over `signers` candidates.

    `matches(principal_index, signer)` says whether a signer satisfies a principal. Each signer
    satisfies at most one principal (`used` flags, as `cauthdsl.compile`); a sub-rule's claims
    stick only if it is satisfied. Shared by policy evaluation and endorsement planning.
    """
    return _greedy(_node(rule), matches, [False] * signers)


def _node(rule: policies_pb2.SignaturePolicy) -> RuleNode:
    if rule.WhichOneof("Type") == "signed_by":
        return int(rule.signed_by)
    return int(rule.n_out_of.n), tuple(_node(sub) for sub in rule.n_out_of.rules)


def _greedy(rule: RuleNode, matches: Callable[[int, int], bool], used: list[bool]) -> bool:
    if isinstance(rule, int):
        for signer, taken in enumerate(used):
            if not taken and matches(rule, signer):
                used[signer] = True
                return True
        return False
    n, subs = rule
    count = 0
    for sub in subs:
        trial = list(used)
        if _greedy(sub, matches, trial):
            count += 1
            used[:] = trial
    return count >= n


ImplicitRule = Literal["ANY", "ALL", "MAJORITY"]


def implicit_meta_threshold(rule: ImplicitRule, n: int) -> int:
    """How many of `n` sub-policies must pass: ANY 1, ALL n, MAJORITY n//2+1; 0 when n is 0."""
    if n == 0:
        return 0
    return {"ANY": 1, "ALL": n, "MAJORITY": n // 2 + 1}[rule]


def evaluate_implicit_meta(rule: ImplicitRule, sub_results: Sequence[bool]) -> bool:
    """Whether the sub-policy results meet `rule`'s threshold (`common/policies/implicitmeta.go`)."""
    return decide_implicit_meta(rule, len(sub_results), iter(sub_results))


def decide_implicit_meta(rule: ImplicitRule, n: int, sub_results: Iterator[bool]) -> bool:
    """`evaluate_implicit_meta` over `n` lazily computed results, drawing no more of them than
    needed: ANY stops at the first pass, ALL at the first failure, MAJORITY once a majority
    passed or can no longer pass. The verdict is the same as counting all of them."""
    need = implicit_meta_threshold(rule, n)
    left = n
    while need > 0 and need <= left:
        left -= 1
        need -= next(sub_results)
    return need <= 0
