"""Typed errors a caller can act on, and the one table that maps them to gRPC, HTTP, exit codes
and Fabric's `common.Status`.

A leaf module: every layer may import it, it imports nothing of ours. Domain errors subclass a
*category*; only categories carry a `Status` (style.md §2). Messages reach clients and logs, so
they never contain patient data or secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class Status:
    """How one category of failure is reported on each edge."""

    grpc: str  # a grpc.StatusCode name
    http: int
    exit_code: int
    # a Fabric common.Status name: what Broadcast and Deliver answer. As Fabric's orderer
    # (broadcast.ClassifyError), all but a missing channel, a refusal, and a busy or unreachable
    # service is BAD_REQUEST (even our own bugs); SERVICE_UNAVAILABLE says: try another node.
    fabric: str


class MedallianceError(Exception):
    """A failure the caller can act on. The message names the thing and says what to fix."""

    status: ClassVar[Status] = Status(grpc="INTERNAL", http=500, exit_code=70, fabric="BAD_REQUEST")


class InvalidArgument(MedallianceError):
    """Malformed input: a bad protobuf, a wrong argument count, a bad config value."""

    status = Status(grpc="INVALID_ARGUMENT", http=400, exit_code=2, fabric="BAD_REQUEST")


class NotFound(MedallianceError):
    """An unknown channel, contract, transaction or block."""

    status = Status(grpc="NOT_FOUND", http=404, exit_code=1, fabric="NOT_FOUND")


class PermissionDenied(MedallianceError):
    """A signature or policy check failed, or the caller is not a member."""

    status = Status(grpc="PERMISSION_DENIED", http=403, exit_code=4, fabric="FORBIDDEN")


class PreconditionFailed(MedallianceError):
    """The request is well formed but the system is not in a state to accept it."""

    status = Status(grpc="FAILED_PRECONDITION", http=400, exit_code=1, fabric="BAD_REQUEST")


class Conflict(MedallianceError):
    """A conflicting concurrent change, a duplicate, or a refused endorsement."""

    status = Status(grpc="ABORTED", http=409, exit_code=1, fabric="BAD_REQUEST")


class Overloaded(MedallianceError):
    """Too much work queued: retry later."""

    status = Status(grpc="RESOURCE_EXHAUSTED", http=429, exit_code=3, fabric="SERVICE_UNAVAILABLE")


class Unavailable(MedallianceError):
    """A needed node or service cannot be reached, or is shutting down."""

    status = Status(grpc="UNAVAILABLE", http=503, exit_code=3, fabric="SERVICE_UNAVAILABLE")


class DeadlineExceeded(MedallianceError):
    """The answer did not come before the deadline."""

    status = Status(grpc="DEADLINE_EXCEEDED", http=504, exit_code=3, fabric="SERVICE_UNAVAILABLE")


# The categories every error belongs to, each with its one status (exit code, gRPC, HTTP, Fabric).
CATEGORIES: tuple[type[MedallianceError], ...] = (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    Conflict,
    Overloaded,
    Unavailable,
    DeadlineExceeded,
)


def category_of(exc: MedallianceError) -> type[MedallianceError]:
    """The category `exc` is reported as (for re-raising it with more context)."""
    return next((c for c in CATEGORIES if c.status == exc.status), MedallianceError)


def category_of_fabric(status: str) -> type[MedallianceError]:
    """The category a Fabric `common.Status` (by name) reports, read back by a client: the first
    category answered with it (BAD_REQUEST -> InvalidArgument, SERVICE_UNAVAILABLE ->
    Overloaded); MedallianceError for a status no category answers."""
    return next((c for c in CATEGORIES if c.status.fabric == status), MedallianceError)


# --- domain errors used across layers ------------------------------------------------------------


class UnknownChannel(NotFound):
    def __init__(self, channel_id: str) -> None:
        super().__init__(f"no channel {channel_id!r} on this peer; check the channel name")
        self.channel_id = channel_id


class UnknownContract(NotFound):
    def __init__(self, channel_id: str, name: str) -> None:
        super().__init__(
            f"no contract {name!r} is committed on channel {channel_id!r}; "
            "deploy it through the lifecycle first"
        )
        self.channel_id = channel_id
        self.name = name


class MalformedMessage(InvalidArgument):
    """Bytes that do not decode as the protobuf message they must be."""

    def __init__(self, what: str, detail: str = "") -> None:
        suffix = f": {detail}" if detail else ""
        super().__init__(f"malformed {what}{suffix}")
        self.what = what


class BadSignature(PermissionDenied):
    """A signature that does not verify, or is not in Fabric's canonical low-S form."""


class InvalidIdentity(PermissionDenied):
    """A certificate that does not belong to the claimed MSP, is expired, or is revoked."""


class PolicyNotSatisfied(PermissionDenied):
    """The signatures present do not satisfy the policy that guards the action."""


class DuplicateTransaction(Conflict):
    def __init__(self, tx_id: str) -> None:
        super().__init__(f"transaction {tx_id} was already submitted; build a new proposal")
        self.tx_id = tx_id


class ContractError(MedallianceError):
    """A contract refused the call; its message is the contract's own.

    The contract's status (Fabric's chaincode response status) picks the category, here and
    nowhere else: constructing one gives an instance of a subclass that is also that category
    (`contract_category`), so `except PermissionDenied` catches a contract's 403 and every edge
    (exit code, gRPC code, HTTP status) follows the contract's own verdict.
    """

    status = Conflict.status

    def __new__(cls, message: str = "", status_code: int = 500) -> ContractError:
        del message  # consumed by __init__
        chosen = _CONTRACT_CLASSES[contract_category(status_code)] if cls is ContractError else cls
        instance: ContractError = super().__new__(chosen)
        return instance

    def __init__(self, message: str, status_code: int = 500) -> None:
        super().__init__(message, status_code)
        self.status_code = status_code

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[object, ...]:
        return (ContractError, (str(self), self.status_code))


def contract_category(status_code: int) -> type[MedallianceError]:
    """The category of a contract's refusal by its status: 400 bad input, 403 permission
    denied, 404 not found, 412 precondition failed, 5xx retry may help, any other a conflict
    (409 and the unexpected: the answer is no)."""
    if status_code >= 500:
        return Unavailable
    return {
        400: InvalidArgument,
        403: PermissionDenied,
        404: NotFound,
        412: PreconditionFailed,
    }.get(status_code, Conflict)


class _ContractInvalidArgument(ContractError, InvalidArgument):
    status = InvalidArgument.status


class _ContractPermissionDenied(ContractError, PermissionDenied):
    status = PermissionDenied.status


class _ContractNotFound(ContractError, NotFound):
    status = NotFound.status


class _ContractPreconditionFailed(ContractError, PreconditionFailed):
    status = PreconditionFailed.status


class _ContractConflict(ContractError, Conflict):
    status = Conflict.status


class _ContractUnavailable(ContractError, Unavailable):
    status = Unavailable.status


_CONTRACT_CLASSES: dict[type[MedallianceError], type[ContractError]] = {
    InvalidArgument: _ContractInvalidArgument,
    PermissionDenied: _ContractPermissionDenied,
    NotFound: _ContractNotFound,
    PreconditionFailed: _ContractPreconditionFailed,
    Conflict: _ContractConflict,
    Unavailable: _ContractUnavailable,
}


class PolicySyntaxError(InvalidArgument):
    """A signature policy that does not parse in Fabric's policy language."""


class ConfigError(InvalidArgument):
    """A network configuration file with a wrong or missing value."""


class QuerySyntaxError(InvalidArgument):
    """A rich query outside the supported CouchDB selector subset."""


class StateDatabaseUnavailable(Unavailable):
    """The PostgreSQL server holding a world state cannot be reached or refuses the login."""


class NoNetwork(NotFound):
    """A folder that holds no initialised network (no network config file in it)."""

    def __init__(self, directory: str, config_file: str) -> None:
        super().__init__(f"{directory} holds no network (no {config_file}); run `network init`")
        self.directory = directory
        self.config_file = config_file


class UnknownBlock(NotFound):
    def __init__(self, number: int, height: int) -> None:
        super().__init__(f"no block {number}: the ledger has blocks 0..{height - 1}")
        self.number = number


class BlockBeforeSnapshot(NotFound):
    def __init__(self, number: int, first_block: int) -> None:
        super().__init__(
            f"no block {number} here: this ledger was joined from a snapshot and begins at "
            f"block {first_block}; ask an ordering node or a peer that joined from genesis"
        )
        self.number = number


class SnapshotInvalid(InvalidArgument):
    """A ledger snapshot or node backup whose files do not match what its metadata records."""


class UnknownPolicy(NotFound):
    def __init__(self, channel_id: str, path: str) -> None:
        super().__init__(
            f"channel {channel_id!r} has no policy {path}; "
            "use a path like /Channel/Application/Writers"
        )
        self.channel_id = channel_id
        self.path = path


class InvalidPublicBundle(InvalidArgument):
    """An organisation's public bundle that must not be used (a private key inside, a
    certificate its CA did not issue, another organisation's name, a malformed archive)."""


class GenesisMismatch(PreconditionFailed):
    """A genesis archive that does not match the hash published out of band, or whose blocks do
    not follow from the public bundles it carries: the organisation must not start from it."""


# --- Fabric CA (ca/: docs/fabric-ca.md) --------------------------------------------------------


class CaAuthenticationFailed(PermissionDenied):
    """A Fabric CA request whose secret or token does not prove the caller's identity.

    One message for an unknown enrollment ID and a wrong secret, so it tells nothing about
    which identities exist."""


class CaRegistrarDenied(PermissionDenied):
    """A Fabric CA registrar asking for what its `hf.*` attributes do not allow."""


class BadCertificateRequest(InvalidArgument):
    """A Fabric CA enrolment whose PKCS#10 request (CSR) is malformed or does not verify."""


# --- Fabric discovery service (gateway/discovery.py: docs/discovery.md) -------------------------


class InvalidDiscoveryRequest(InvalidArgument):
    """A `Discover` request Fabric refuses as a whole: no authentication, no client identity,
    or a TLS certificate hash that does not match the client's TLS certificate."""
