"""`medalliance serve`: the web client of one organisation, beside its peer (docs/web.md).

Runs the FastAPI application (web/app.py) under uvicorn until Ctrl-C. It uses only the
organisation's own key material, peer and hospital store. TLS: give --tls-cert/--tls-key, or run
behind a TLS-terminating reverse proxy on the same host with --behind-https-proxy (cookies then
carry `Secure` and the proxy's X-Forwarded-* headers from 127.0.0.1 are trusted).
"""

from __future__ import annotations

import ipaddress
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from medalliance.cli.output import stderr, stdout
from medalliance.errors import InvalidArgument, PreconditionFailed

if TYPE_CHECKING:  # the web stack is imported when a server starts, not by every command
    from medalliance.web.backend import WebBackend
    from medalliance.web.security import WebSettings


def serve(
    directory: Annotated[Path, typer.Option("--dir", help="The network folder (network.yaml).")],
    org: Annotated[str, typer.Option("--org", help="The organisation this server acts for.")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help="Port to listen on.", min=1, max=65535)
    ] = 8000,
    accounts: Annotated[
        str | None,
        typer.Option(
            "--accounts",
            help="Accounts database: a file or postgresql://... (default DIR/web-accounts.db).",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="PEM certificate chain: serve HTTPS.")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="PEM private key of --tls-cert.")
    ] = None,
    behind_https_proxy: Annotated[
        bool,
        typer.Option(
            "--behind-https-proxy", help="A TLS reverse proxy on this host forwards to us."
        ),
    ] = False,
    idle_minutes: Annotated[
        float,
        typer.Option(
            "--idle-minutes", help="Sessions end after this long without a request.", min=1
        ),
    ] = 30.0,
) -> None:
    """Serve the web client of ORG of a running network (`network up DIR`) until Ctrl-C.

    Needs at least one staff account (`medalliance web account add`).

    Example: medalliance serve --dir net --org SecondaryHospitalA --port 8000
    """
    if (tls_cert is None) != (tls_key is None):
        raise InvalidArgument("give both --tls-cert and --tls-key, or neither")
    from medalliance.web.backend import WebBackend
    from medalliance.web.security import WebSettings

    https = tls_cert is not None or behind_https_proxy
    backend = WebBackend.of_organization(directory, org, accounts)
    try:
        own = [a for a in backend.accounts.all() if backend.serves(a.organization)]
        if not own:
            name = backend.organizations[0]
            raise PreconditionFailed(
                f"no web account of {name} yet; add one first, e.g.: medalliance web account add "
                f"admin.ops --dir {directory} --org {name} --identity Admin"
            )
        settings = WebSettings(https=https, idle_minutes=idle_minutes)
        run_server(backend, settings, host, port, tls_cert, tls_key, behind_https_proxy)
    finally:
        backend.close()


def run_server(
    backend: WebBackend,
    settings: WebSettings,
    host: str,
    port: int,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    behind_proxy: bool = False,
) -> None:
    """Serve `backend` until Ctrl-C; prints the URL. Access lines go to stderr (no query strings)."""
    import uvicorn

    from medalliance.web.app import create_app

    app = create_app(backend, settings)
    access = logging.getLogger("medalliance.web.access")
    if not access.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s access %(message)s"))
        access.addHandler(handler)
        access.setLevel(logging.INFO)
        access.propagate = False
    scheme = "https" if tls_cert is not None else "http"
    shown = f"[{host}]" if ":" in host else host
    stdout().print(f"web client on {scheme}://{shown}:{port}/ — Ctrl-C stops it", highlight=False)
    if not settings.https and not _loopback(host):
        stderr().print(
            "[yellow]warning:[/yellow] serving plain HTTP on a non-loopback address; use "
            "--tls-cert/--tls-key or a TLS reverse proxy (docs/web.md, 'Security')"
        )
    sys.stdout.flush()
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=False,  # ours (web/security.py) leaves out query strings
        log_level="warning",
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        proxy_headers=behind_proxy,
        forwarded_allow_ips="127.0.0.1" if behind_proxy else None,
        server_header=False,
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
