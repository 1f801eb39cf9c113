#!/usr/bin/env bash
# Runs every test project of Attributes.sln and prints, as its very last line, the totals over all projects:
#   N passed, N failed[, N skipped]
# Installs ZooKeeper from Debian's packages first when it is missing (the real-ZooKeeper tests start their own servers).
# Exit status: 0 when every test passed, non-zero otherwise (a failed test, a build error or a crashed test host).
set -uo pipefail
cd "$(dirname "$0")/.."
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

ensure_zookeeper() {
  if [ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null; then return 0; fi
  echo "ZooKeeper not found: installing it from Debian's packages (apt-get install -y zookeeper)"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq zookeeper >/dev/null; }; then
    echo "error: could not install ZooKeeper; install it with: sudo apt-get update && sudo apt-get install -y zookeeper" >&2
    return 1
  fi
}
ensure_zookeeper || { echo "0 passed, 0 failed"; exit 1; }

results=$(mktemp -d "${TMPDIR:-/tmp}/shardedjobs-tests-XXXXXX")
trap 'rm -rf "$results"' EXIT

dotnet build Attributes.sln -c Release -v quiet -nologo -clp:NoSummary
build_rc=$?
test_rc=1
if [ $build_rc -eq 0 ]; then
  # --blame-hang-timeout: a hung test host is killed (with a dump of what hung) instead of stalling CI.
  dotnet test Attributes.sln -c Release --no-build --logger "trx" --logger "console;verbosity=normal" \
    --results-directory "$results" --blame-hang-timeout 8m -- RunConfiguration.TreatNoTestsAsError=false
  test_rc=$?
else
  echo "error: the build failed (exit $build_rc); no test ran" >&2
fi

passed=0; failed=0; skipped=0; files=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  files=$((files + 1))
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  get() { echo "$counters" | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p"; }
  passed=$((passed + $(get passed))); failed=$((failed + $(get failed) + $(get error) + $(get timeout) + $(get aborted)))
  skipped=$((skipped + $(get notExecuted)))
done

# The names of failed tests, just above the totals, so a CI log cut to its end still says what failed.
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  grep -o '<UnitTestResult [^>]*outcome="\(Failed\|Error\|Timeout\|Aborted\)"[^>]*>' "$trx" \
    | sed -n 's/.*testName="\([^"]*\)".*/FAILED: \1/p'
done

projects=$(grep -c 'Tests\.csproj"' Attributes.sln)
status=0
if [ $build_rc -ne 0 ] || [ $test_rc -ne 0 ] || [ $failed -ne 0 ]; then status=1; fi
if [ $files -ne "$projects" ]; then
  echo "error: $projects test projects but $files result files: a test host crashed or did not run" >&2
  status=1
fi
[ $status -ne 0 ] && echo "test run FAILED (build exit $build_rc, test exit $test_rc)"
summary="$passed passed, $failed failed"
[ $skipped -gt 0 ] && summary="$summary, $skipped skipped"
echo "$summary"
exit $status
