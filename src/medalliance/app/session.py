"""Connect to a network of processes as one of its users, through the Gateway API.

Used by `network up` (admins deploy the configured contracts through the lifecycle) and by
`medalliance tx ...`. The user's organisation's first peer is the gateway, reached over TLS with
the organisation's TLS CA, exactly as a hospital application would connect.
"""

from __future__ import annotations

import re

from medalliance.app.peer_commits import wait_for_block
from medalliance.contracts.lifecycle import LIFECYCLE_NAMESPACE
from medalliance.errors import ContractError, InvalidArgument, PreconditionFailed
from medalliance.identity.cryptogen import load_signer
from medalliance.identity.signing import Signer
from medalliance.node.bootstrap import NetworkLayout
from medalliance.sdk import Gateway, GatewayError, SubmittedTransaction, connect


def user_signer(layout: NetworkLayout, organization: str, user: str) -> Signer:
    """The signing identity of `user` of `organization`; `InvalidArgument` lists the users there
    are (an unknown user is bad input, as an unknown organisation is: README, exit codes)."""
    org = layout.config.organization(organization)
    msp_dir = layout.user_msp_dir(org.msp_id, user)
    if not msp_dir.is_dir():
        users = sorted(
            p.name.split("@")[0] for p in (layout.org_dir(org.msp_id) / "users").iterdir()
        )
        raise InvalidArgument(f"{org.name} has no user {user!r}; users: {', '.join(users)}")
    return load_signer(msp_dir, org.msp_id)


def own_peer(layout: NetworkLayout, organization: str) -> tuple[str, bytes, str]:
    """The organisation's first peer: (endpoint, its TLS CA certificate, TLS server name)."""
    org = layout.config.organization(organization)
    if not org.peers:
        raise PreconditionFailed(f"{org.name} runs no peer to connect to")
    peer = org.peers[0]
    tls_ca = next((layout.org_msp_dir(org.msp_id) / "tlscacerts").glob("*.pem")).read_bytes()
    return peer.endpoint, tls_ca, f"{peer.name}.{org.domain}"


def connect_as(layout: NetworkLayout, organization: str, user: str = "User1") -> Gateway:
    """A gateway connection for `user` of `organization` (name or MSP id) to its own peer."""
    endpoint, tls_ca, server_name = own_peer(layout, organization)
    return connect(
        endpoint,
        signer=user_signer(layout, organization, user),
        tls_root_cert=tls_ca,
        server_name=server_name,
    )


class GatewayAdminSession:
    """An organisation admin's `LifecycleSession` (node/deploy.py) over the Gateway API."""

    def __init__(self, layout: NetworkLayout, msp_id: str) -> None:
        self._layout = layout
        self._gateway = connect_as(layout, msp_id, "Admin")
        self._submitted: dict[str, SubmittedTransaction] = {}

    def submit(self, channel: str, function: str, arg: bytes) -> str:
        contract = self._gateway.get_network(channel).get_contract(LIFECYCLE_NAMESPACE)
        submitted = contract.submit_async(function, arguments=[arg])
        self._submitted[submitted.transaction_id] = submitted
        return submitted.transaction_id

    def wait(self, channel: str, tx_id: str) -> int:
        status = self._submitted.pop(tx_id).get_status()
        # Every peer, not only this organisation's: the commit that follows an approval is
        # endorsed by the other organisations' peers, which must count that approval already.
        wait_for_block(self._layout, channel, status.block_number)
        return status.code

    def query(self, channel: str, function: str, arg: str | bytes) -> bytes | None:
        contract = self._gateway.get_network(channel).get_contract(LIFECYCLE_NAMESPACE)
        try:
            return contract.evaluate_transaction(function, arg)
        except GatewayError as exc:
            if "chaincode response 404" in str(exc):
                return None
            raise

    def close(self) -> None:
        self._gateway.close()


_REFUSAL = re.compile(r"chaincode response (\d+), (.*)", re.DOTALL)


def contract_refusal(exc: GatewayError) -> Exception:
    """A contract's refusal reported through the gateway, as a `ContractError` with the
    contract's own status and message (so its category follows that status); any other
    gateway error unchanged."""
    for detail in exc.details:
        match = _REFUSAL.search(detail.message)
        if match:
            return ContractError(match.group(2), int(match.group(1)))
    match = _REFUSAL.search(str(exc))
    return ContractError(match.group(2), int(match.group(1))) if match else exc
