#!/usr/bin/env bash
# The long chaos run (issue "Faults", part 3): a 3-server ZooKeeper ensemble (tickTime 250 ms) and three quickstart sample
# processes P1-P3 on loopback, under a seeded schedule of SIGKILL/SIGTERM + restarts, SIGSTOP/SIGCONT, partitions, a ZooKeeper
# server killed, the leader paused and the quorum lost; then the history checker and the registry audit. Prints each fault as
# it is injected, each violation, a JSON line, and last "chaos: N faults, F fires checked, D duplicates, O overlaps, L lost";
# exits non-zero on any violation. The run's files (execution log, each app's output, faults, ZooKeeper logs) stay in the
# directory it prints.
# Usage: bench/chaos.sh [faults, default 200] [seed, default: random] [min gap s, default 1] [max gap s, default 3]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
faults=${1:-200}; seed=${2:-$RANDOM}; min_gap=${3:-1}; max_gap=${4:-3}
[ -f /usr/share/java/zookeeper.jar ] || { apt-get update -qq && apt-get install -y -qq zookeeper >/dev/null; }
dotnet build "$root/samples/Quickstart" -c Release -v quiet -nologo >/dev/null
dotnet build "$root/bench/ShardedJobs.Benchmarks" -c Release -v quiet -nologo >/dev/null
exec dotnet "$root/bench/ShardedJobs.Benchmarks/bin/Release/net10.0/ShardedJobs.Benchmarks.dll" chaos "$faults" "$seed" "$min_gap" "$max_gap"
