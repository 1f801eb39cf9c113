#!/usr/bin/env bash
# The project's ZooKeeper client and the official Java client, side by side, against ONE throw-away ZooKeeper 3.8 server
# on a free loopback port (tickTime 500, forceSync=no, as the Java anchor's own script). Prints JSON lines:
#   {"client":"java"|"dotnet","workload":...,"window":...,"ops_per_s":...,"p50_us":...,"p99_us":...,"p999_us":...,"n":...}
# Usage: bench/zk-client-vs-java.sh [seconds per workload, default 10]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd); secs=${1:-10}
java_bench="$root/../shared/tools/zk-java-bench/ZkBench.java"
[ -f /usr/share/java/zookeeper.jar ] || { apt-get update -qq && apt-get install -y -qq zookeeper >/dev/null; }
cp=/etc/zookeeper/conf:$(ls /usr/share/java/*.jar | tr '\n' ':')
work=$(mktemp -d); port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
cat > "$work/zoo.cfg" <<CFG
tickTime=500
dataDir=$work/data
clientPort=$port
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=*
maxClientCnxns=0
forceSync=${SYNC:-no}
CFG
java -cp "$cp" org.apache.zookeeper.server.quorum.QuorumPeerMain "$work/zoo.cfg" >"$work/server.log" 2>&1 & zkpid=$!
trap 'kill $zkpid 2>/dev/null; wait $zkpid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ "$( (exec 3<>/dev/tcp/127.0.0.1/$port; echo ruok >&3; cat <&3) 2>/dev/null)" = imok ] && break; sleep 0.2; done
dotnet build "$root/bench/ShardedJobs.Benchmarks" -c Release -v quiet -nologo >/dev/null
have_java=0
if [ -f "$java_bench" ]; then javac -nowarn -cp "$cp" -d "$work" "$java_bench" 2>/dev/null && have_java=1; fi
for w in "get 1" "get 16" "createdelete 1" "createdelete 16" "multi10 1"; do
  set -- $w
  if [ $have_java -eq 1 ]; then
    java -cp "$cp:$work" -Dzookeeper.log.threshold=WARN -Dlog4j.configuration=none ZkBench 127.0.0.1:$port $1 "$secs" $2 2>/dev/null | grep '^{' || true
  fi
  dotnet "$root/bench/ShardedJobs.Benchmarks/bin/Release/net10.0/ShardedJobs.Benchmarks.dll" zk-client 127.0.0.1:$port $1 "$secs" $2
done
