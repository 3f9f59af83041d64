#!/usr/bin/env python3
"""Write Caliper's networkconfig.yaml for a medalliance network folder.

    make-networkconfig.py --dir <network folder> [--output networkconfig.yaml] [--org Org1]

Reads <dir>/network.yaml (written by `medalliance network init`), takes the first peer of the
organisation (default Org1), and fills networkconfig.template.yaml with absolute paths to the
peer's TLS CA certificate and the User1 certificate and key. Needs only the standard library
and PyYAML.
"""

from __future__ import annotations

import argparse
import json
import string
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def build(directory: Path, org_name: str, user: str, channel: str, contract: str) -> str:
    network = yaml.safe_load((directory / "network.yaml").read_text(encoding="utf-8"))
    orgs = [o for o in network["organizations"] if o["name"] == org_name]
    if not orgs:
        raise SystemExit(f"no organisation {org_name!r} in {directory / 'network.yaml'}")
    org = orgs[0]
    if not org.get("peers"):
        raise SystemExit(f"organisation {org_name!r} has no peers")
    peer = org["peers"][0]
    domain = org["domain"]
    peer_name = f"{peer['name']}.{domain}"
    org_dir = (directory / "organizations" / "peerOrganizations" / domain).resolve()
    peer_tls_ca = org_dir / "peers" / peer_name / "tls" / "ca.crt"
    msp = org_dir / "users" / f"{user}@{domain}" / "msp"
    certs = sorted((msp / "signcerts").glob("*.pem"))
    user_key = msp / "keystore" / "priv_sk"
    if not certs:
        raise SystemExit(f"no certificate in {msp / 'signcerts'}")
    for path in (peer_tls_ca, user_key):
        if not path.is_file():
            raise SystemExit(f"missing {path}")
    channels = {c["name"]: c for c in network.get("channels", [])}
    if channel not in channels:
        raise SystemExit(f"no channel {channel!r} in the network")
    if contract not in {c["name"] for c in channels[channel].get("contracts", [])}:
        raise SystemExit(f"no contract {contract!r} on channel {channel!r}")

    template = string.Template((HERE / "networkconfig.template.yaml").read_text(encoding="utf-8"))
    values = {
        "CHANNEL": channel,
        "CONTRACT": contract,
        "MSP_ID": org["msp_id"],
        "USER": user,
        "USER_KEY": user_key,
        "USER_CERT": certs[0],
        "PEER_ENDPOINT": f"{peer['host']}:{peer['port']}",
        "PEER_TLS_CA": peer_tls_ca,
        "PEER_HOST_NAME": peer_name,
    }
    # JSON strings are valid YAML double-quoted scalars: safe for any path.
    text = template.substitute({k: json.dumps(str(v)) for k, v in values.items()})
    yaml.safe_load(text)  # fail early on a malformed result
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dir", required=True, type=Path, help="network folder (medalliance network init --dir)"
    )
    parser.add_argument("--output", type=Path, default=HERE / "networkconfig.yaml")
    parser.add_argument(
        "--org", default="Org1", help="organisation whose first peer is the gateway"
    )
    parser.add_argument("--user", default="User1")
    parser.add_argument("--channel", default="mychannel")
    parser.add_argument("--contract", default="basic")
    args = parser.parse_args(argv)
    text = build(args.dir.resolve(), args.org, args.user, args.channel, args.contract)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
