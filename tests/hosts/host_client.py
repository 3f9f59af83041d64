"""What a hospital's own system does from inside its host: `python -m tests.hosts.host_client`.

The tests run it with `ip netns exec` where the test process (in the root namespace) cannot
reach, e.g. inside a partitioned host. It prints exactly one JSON document:

- `status HOST:PORT...`: each node's operations `/status` (`{"down": true}` when it does not
  answer), in a list;
- `submit DIR ORG KEY`: submits CreateAsset(KEY) on the `basic` contract as ORG's User1 without
  waiting for its commit: `{"tx_id": ...}`, or `{"error": ...}` when endorsement or submission fails.
- `commit DIR ORG KEY`: the same, then waits for its commit: `{"tx_id", "block", "valid"}`.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

CHANNEL, CONTRACT = "alliance", "basic"
TIMEOUT_S = 60.0


def status(address: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://{address}/status", timeout=5) as reply:
            answer: dict[str, Any] = json.loads(reply.read())
            return answer
    except (urllib.error.URLError, OSError, ValueError):
        return {"down": True}


def submit(directory: str, org: str, key: str, *, wait: bool) -> dict[str, Any]:
    # Imported here: `status` answers without loading the SDK (a second saved per call).
    from medalliance.app.session import connect_as
    from medalliance.node.bootstrap import NetworkLayout
    from medalliance.sdk import GatewayError

    with connect_as(NetworkLayout.load(Path(directory)), org) as gateway:
        contract = gateway.get_network(CHANNEL).get_contract(CONTRACT)
        try:
            submitted = contract.submit_async(
                "CreateAsset", arguments=[key, "blue", "5", org, "100"], timeout=TIMEOUT_S
            )
        except GatewayError as exc:
            return {"error": str(exc)}
        if not wait:
            return {"tx_id": submitted.transaction_id}
        found = submitted.get_status(timeout=TIMEOUT_S)
        return {
            "tx_id": found.transaction_id,
            "block": found.block_number,
            "valid": found.successful,
        }


def main(argv: list[str]) -> None:
    answer: Any
    match argv:
        case ["status", *addresses]:
            answer = [status(address) for address in addresses]
        case ["submit" | "commit" as verb, directory, org, key]:
            answer = submit(directory, org, key, wait=verb == "commit")
        case _:
            raise SystemExit(__doc__)
    print(json.dumps(answer))


if __name__ == "__main__":
    main(sys.argv[1:])
