#!/usr/bin/env bash
# Crash-to-compensation latency with real processes (issue "Failover"): the quickstart sample killed with SIGKILL mid-item for
# session timeouts of 2, 5 and 10 s, and stopped with SIGTERM (a graceful stop), against a real ZooKeeper 3.8 server with
# tickTime 500 ms on a free loopback port. One JSON line per case: min/p50/p99/max in ms and the target.
# Usage: bench/failover.sh [rounds per case, default 20]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd); rounds=${1:-20}
[ -f /usr/share/java/zookeeper.jar ] || { apt-get update -qq && apt-get install -y -qq zookeeper >/dev/null; }
dotnet build "$root/samples/Quickstart" -c Release -v quiet -nologo >/dev/null
dotnet build "$root/bench/ShardedJobs.Benchmarks" -c Release -v quiet -nologo >/dev/null
run() { dotnet "$root/bench/ShardedJobs.Benchmarks/bin/Release/net10.0/ShardedJobs.Benchmarks.dll" "$@"; }
for t in 2 5 10; do run failover-latency sigkill $t "$rounds"; done
run failover-latency sigterm 10 "$rounds"
