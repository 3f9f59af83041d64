"""`medalliance ca start`: an organisation's Fabric CA server over HTTPS (docs/fabric-ca.md).

Runs the CA (ca/server.py) under uvicorn until Ctrl-C or SIGTERM, with the TLS certificate from
the organisation's TLS CA. `network up` starts one per organisation whose config has `ca:`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel

from medalliance.cli.output import dir_option, emit_json, output_state, stdout
from medalliance.node.bootstrap import NetworkLayout

app = typer.Typer(
    help="An organisation's Fabric CA server (docs/fabric-ca.md).", no_args_is_help=True
)

DirOption = Annotated[Path, dir_option("The network folder (created by `network init`).")]


class Started(BaseModel):
    ca_name: str
    url: str


@app.command("start")
def start(
    directory: DirOption,
    org: Annotated[str, typer.Option("--org", help="The organisation whose CA this is.")],
    host: Annotated[
        str | None, typer.Option("--host", help="Address to listen on (default: the config's).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", help="Port to listen on (default: the config's).", min=1, max=65535),
    ] = None,
) -> None:
    """Serve ORG's Fabric CA with TLS until Ctrl-C.

    The first start registers the bootstrap registrar (the config's `bootstrap_secret`, else a
    random secret written to <org folder>/ca-server/bootstrap-secret, mode 0600).

    Example: medalliance ca start --dir test-network --org Org1
    """
    import uvicorn

    from medalliance.app.org_ca import open_org_ca
    from medalliance.ca.server import create_ca_app

    layout = NetworkLayout.load(directory)
    served = open_org_ca(layout, org, host=host, port=port)
    try:
        if output_state.json:
            emit_json(Started(ca_name=served.ca.name, url=served.url))
        else:
            stdout().print(f"Fabric CA {served.ca.name} on {served.url} — Ctrl-C stops it")
        sys.stdout.flush()
        uvicorn.run(
            create_ca_app(served.ca),
            host="127.0.0.1" if served.host == "localhost" else served.host,
            port=served.port,
            access_log=False,  # an access line would carry enrollment IDs in paths
            log_level="warning",
            ssl_certfile=str(served.tls_cert),
            ssl_keyfile=str(served.tls_key),
            server_header=False,
        )
    finally:
        served.ca.close()
