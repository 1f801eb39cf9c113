#!/usr/bin/env bash
# The runtime's figures (issue "Runtime"), one JSON line each: trigger delay with 3 instances on the embedded registry and
# on a real ZooKeeper 3.8 server, registry round trips per fire per instance for 1/10/100 items, and 1,000 jobs on one
# instance (memory, CPU, registry traffic). The harness starts its own ZooKeeper on a free loopback port.
# Usage: bench/runtime.sh [fires for the delay figures, default 30] [steady seconds for 1,000 jobs, default 60]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd); fires=${1:-30}; steady=${2:-60}
[ -f /usr/share/java/zookeeper.jar ] || { apt-get update -qq && apt-get install -y -qq zookeeper >/dev/null; }
dotnet build "$root/bench/ShardedJobs.Benchmarks" -c Release -v quiet -nologo >/dev/null
run() { dotnet "$root/bench/ShardedJobs.Benchmarks/bin/Release/net10.0/ShardedJobs.Benchmarks.dll" "$@"; }
for registry in embedded zookeeper; do run trigger-delay $registry "$fires" 9; done
for items in 1 10 100; do run round-trips zookeeper $items 20; done
for registry in embedded zookeeper; do run many-jobs $registry 1000 "$steady"; done
