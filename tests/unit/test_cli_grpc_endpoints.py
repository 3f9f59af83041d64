"""Every `medalliance` process runs gRPC's posix TCP endpoints (docs/platform-decisions.md):
`main` sets GRPC_EXPERIMENTS before any command loads gRPC, and an operator's value wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from medalliance.cli.main import GRPC_EXPERIMENTS

# Runs `main` as a node process would, then reports whether gRPC had loaded before it and the
# variable gRPC would read when a command loads it.
PROBE = """
import json, os, sys
import medalliance.cli.main as cli
loaded_before = "grpc" in sys.modules
sys.argv = ["medalliance", "--help"]
try:
    cli.main()
except SystemExit:
    pass
print(json.dumps({"loaded_before": loaded_before, "value": os.environ.get("GRPC_EXPERIMENTS")}))
"""


def _python(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`script` run by this interpreter in a fresh process with exactly `env`."""
    return subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def _probe(env: dict[str, str]) -> dict[str, object]:
    answer: dict[str, object] = json.loads(_python(PROBE, env).stdout.strip().splitlines()[-1])
    return answer


def _env_without_setting() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "GRPC_EXPERIMENTS"}


def test_main_turns_the_eventengine_endpoints_off_before_grpc_loads() -> None:
    answer = _probe(_env_without_setting())
    assert answer == {"loaded_before": False, "value": GRPC_EXPERIMENTS}


def test_an_operators_setting_is_kept_even_empty() -> None:
    for value in ("", "-event_engine_client"):
        answer = _probe({**_env_without_setting(), "GRPC_EXPERIMENTS": value})
        assert answer == {"loaded_before": False, "value": value}


def test_grpc_picks_the_posix_endpoint_under_the_setting() -> None:
    """The variable does what the decision says: gRPC's tcp trace names its posix endpoint. If a
    gRPC release drops these experiments, this fails: the setting then does nothing, and the
    decision (docs/platform-decisions.md) is to be measured again."""
    script = (
        "import grpc, concurrent.futures as f\n"
        "s = grpc.server(f.ThreadPoolExecutor(1)); p = s.add_insecure_port('127.0.0.1:0'); s.start()\n"
        "c = grpc.insecure_channel(f'127.0.0.1:{p}')\n"
        "try:\n    c.unary_unary('/probe.Probe/Call')(b'', timeout=10)\n"
        "except grpc.RpcError:\n    pass\n"
        "s.stop(0)\n"
    )
    env = {
        **_env_without_setting(),
        "GRPC_EXPERIMENTS": GRPC_EXPERIMENTS,
        "GRPC_TRACE": "tcp",
        "GRPC_VERBOSITY": "DEBUG",
    }
    done = _python(script, env)
    assert "tcp_posix.cc" in done.stderr
    assert "posix_endpoint.cc" not in done.stderr
