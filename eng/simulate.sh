#!/usr/bin/env bash
# The fault simulator's long form (issue "Faults", part 1): seeds FROM..FROM+SEEDS-1, each a simulated MINUTES of three
# instances (real JobRuntimes through the public hosting path) on one embedded registry and one simulation clock, under the
# seed's fault plan; each judged by the history checker and the registry audit. A failing seed prints its plan (the seed alone
# replays it) and the instances' last log lines; SIMULATOR_TRACE=1 keeps every line (Debug and up). Last line:
#   simulator: N seeds, V with violations, F faults (by kind), R runs, T s, S steps (U unsettled)
# Exit status 1 when any seed had a violation.
# Usage: eng/simulate.sh [seeds, default 100] [from, default 1] [minutes, default 60] [parallel processes' share, default 1] [--no-faults]
#   --no-faults: the same seeds (jobs, skews, item lengths) with no fault injected; every seed must keep every rule.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seeds=${1:-100}; from=${2:-1}; minutes=${3:-60}; parallel=${4:-1}
dotnet build "$root/tests/ShardedJobs.Simulator" -c Release -v quiet -nologo -clp:NoSummary >/dev/null
exec dotnet "$root/tests/ShardedJobs.Simulator/bin/Release/net10.0/ShardedJobs.Simulator.dll" --seeds "$seeds" --from "$from" --minutes "$minutes" --parallel "$parallel" "${@:5}"
