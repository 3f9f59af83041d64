#!/usr/bin/env bash
# Run the Caliper benchmark (benchconfig.yaml) against a running medalliance Fabric test network
# (networks/fabric-test-network.yaml or networks/bft-test-network.yaml).
#
#   ./run.sh --dir <network folder> [--benchconfig benchconfig.yaml] [extra `caliper launch manager` options]
#
# 1. writes networkconfig.yaml from <dir>/network.yaml (make-networkconfig.py),
# 2. installs Caliper 0.6.0 (npm ci) and binds it to fabric:2.4 (fabric-gateway 1.5.0) if
#    node_modules is missing,
# 3. runs `caliper launch manager ... --caliper-flow-only-test` (nothing is installed or deployed
#    by Caliper: `basic` is deployed by `medalliance network init`).
# The summary table is printed on the console and written to report.html here.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
DIR=""
BENCHCONFIG="benchconfig.yaml"
EXTRA=()

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --dir) DIR="${2:?--dir needs a value}"; shift 2 ;;
        --dir=*) DIR="${1#--dir=}"; shift ;;
        --benchconfig) BENCHCONFIG="${2:?--benchconfig needs a value}"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) EXTRA+=("$1"); shift ;;
    esac
done
if [[ -z "$DIR" ]]; then
    echo "run.sh: --dir <network folder> is required" >&2
    usage >&2
    exit 2
fi
if [[ ! -f "$DIR/network.yaml" ]]; then
    echo "run.sh: $DIR/network.yaml not found (create the network with 'medalliance network init ... --dir $DIR')" >&2
    exit 2
fi
DIR="$(cd "$DIR" && pwd)"

if [[ -n "${PYTHON:-}" ]]; then
    :
elif [[ -x "$REPO/.venv/bin/python" ]]; then
    PYTHON="$REPO/.venv/bin/python"
else
    PYTHON=python3
fi

cd "$HERE"

echo "==> [1/3] writing networkconfig.yaml from $DIR/network.yaml"
"$PYTHON" make-networkconfig.py --dir "$DIR" --output networkconfig.yaml

if [[ ! -d node_modules/@hyperledger/caliper-cli || ! -d node_modules/@hyperledger/fabric-gateway ]]; then
    echo "==> [2/3] installing Caliper (npm ci) and binding it to fabric:2.4 (fabric-gateway 1.5.0)"
    npm ci --no-audit --no-fund
    npx caliper bind --caliper-bind-sut fabric:2.4 --caliper-bind-cwd .
else
    echo "==> [2/3] Caliper already installed and bound (node_modules present)"
fi

# A fresh prefix for the asset ids, so the benchmark can be repeated on the same network
# (CreateAsset refuses an id that already exists). Read by workload/ids.js in every worker.
export MEDALLIANCE_CALIPER_RUN="${MEDALLIANCE_CALIPER_RUN:-bench$(date +%s)}"
echo "==> [3/3] running Caliper ($BENCHCONFIG, asset ids ${MEDALLIANCE_CALIPER_RUN}_<idPrefix>_<worker>_<tx>)"
npx caliper launch manager \
    --caliper-workspace . \
    --caliper-networkconfig networkconfig.yaml \
    --caliper-benchconfig "$BENCHCONFIG" \
    --caliper-flow-only-test \
    "${EXTRA[@]}"
echo "==> done: report in $HERE/report.html"
