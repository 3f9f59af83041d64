"""The Python SDK against the Fabric test network: submit, evaluate, async submit, events.

    .venv/bin/medalliance network init networks/fabric-test-network.yaml --dir test-network
    .venv/bin/medalliance network up --dir test-network
    .venv/bin/python examples/sdk_quickstart.py test-network

The same code runs against a Fabric 2.4+ test network: point it at fabric-samples/test-network.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

from medalliance.sdk import EndorseError, connect, read_pem, signer_from_msp


def main(network_dir: Path, endpoint: str = "localhost:7051") -> None:
    org1 = network_dir / "organizations" / "peerOrganizations" / "org1.example.com"
    signer = signer_from_msp(org1 / "users" / "User1@org1.example.com" / "msp", "Org1MSP")
    tls_ca = read_pem(org1 / "peers" / "peer0.org1.example.com" / "tls" / "ca.crt")

    with connect(
        endpoint, signer=signer, tls_root_cert=tls_ca, server_name="peer0.org1.example.com"
    ) as gateway:
        network = gateway.get_network("mychannel")
        contract = network.get_contract("basic")

        asset = f"asset-{uuid.uuid4().hex[:8]}"
        contract.submit_transaction("CreateAsset", asset, "yellow", "5", "Tom", "1300")
        print("created:", json.loads(contract.evaluate_transaction("ReadAsset", asset)))

        submitted = contract.submit_async("TransferAsset", arguments=[asset, "Saptha"])
        print("previous owner:", submitted.result.decode())
        status = submitted.get_status()  # waits for the commit
        print(f"transfer committed in block {status.block_number}: {status.successful}")

        try:
            contract.submit_transaction("UpdateAsset", "asset70", "blue", "5", "Tomoko", "300")
        except EndorseError as error:
            print("refused as expected:", error.details[0].message)

        with network.get_block_events(start_block=status.block_number, timeout=10) as blocks:
            block = next(iter(blocks))
            print(f"block {block.header.number} holds {len(block.data.data)} transaction(s)")


if __name__ == "__main__":
    main(Path(sys.argv[1]), *sys.argv[2:3])
