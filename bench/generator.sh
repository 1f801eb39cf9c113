#!/usr/bin/env bash
# Source generator and analyzer time for 10, 100 and 1,000 [ShardedJob] classes: cold (a new driver / compilation) and
# after an unrelated edit. One JSON line each.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dotnet build "$root/bench/ShardedJobs.Benchmarks" -c Release -v quiet -nologo >/dev/null
for n in 10 100 1000; do dotnet "$root/bench/ShardedJobs.Benchmarks/bin/Release/net10.0/ShardedJobs.Benchmarks.dll" generator-time $n; done
for n in 10 100 1000; do dotnet "$root/bench/ShardedJobs.Benchmarks/bin/Release/net10.0/ShardedJobs.Benchmarks.dll" analyzer-time $n; done
