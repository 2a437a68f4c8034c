#!/usr/bin/env bash
# `make soak`: the integration tests that log in more than once, SOAK_RUNS times in a row each
# (default 10), on one workstation per test so the repeats measure logins, not first installs.
# Prints one line per test with its pass count; exits non-zero unless every run passed.
#
#   make soak                      # all four
#   SOAK_RUNS=3 make soak SOAK=demo
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${SOAK_RUNS:-10}
only=${SOAK:-demo ec2 ssh_access jupyter}
results=()
failed=0

pytest_soak() {  # label, test file, -k expression
  local log passed
  log=$(mktemp /tmp/gpubox-soak.XXXXXX)
  pytest "$2" -k "$3" --count "$runs" -p no:randomly -q -rA 2>&1 | tee "$log" | grep -E '^(PASSED|FAILED|ERROR) '
  passed=$(grep -cE "^PASSED .*$4" "$log")
  results+=("$1: $passed/$runs passed ($(grep -oE '[0-9]+ (passed|failed|error)[^=]*in [0-9.]+s' "$log" | tail -1))")
  [ "$passed" = "$runs" ] || failed=1
}

molecule_soak() {  # scenario [-k expression]: converge once, then verify SOAK_RUNS times
  # With an expression, one verify runs only the matching tests, each SOAK_RUNS times in a row
  # (pytest-repeat through PYTEST_ADDOPTS, which molecule's pytest inherits).
  local passed=0 i lock=/tmp/molecule-$1.lock expression=${2:-} log
  flock "$lock" molecule destroy -s "$1" >/dev/null
  if flock "$lock" molecule create -s "$1" >/dev/null && flock "$lock" molecule converge -s "$1" >/dev/null; then
    if [ -n "$expression" ]; then
      log=/tmp/gpubox-soak-$1.log
      PYTEST_ADDOPTS="-k '$expression' --count $runs -p no:randomly -rA" flock "$lock" molecule verify -s "$1" >"$log" 2>&1
      # molecule wraps pytest's lines, so count from its summary: "N selected" and "N passed".
      local clean selected total
      clean=$(sed 's/\x1b\[[0-9;]*m//g' "$log")
      selected=$(grep -oE '[0-9]+ selected' <<<"$clean" | tail -1 | cut -d' ' -f1)
      passed=$(grep -oE '=+ .*[0-9]+ passed' <<<"$clean" | grep -oE '[0-9]+ passed' | tail -1 | cut -d' ' -f1)
      total=${selected:-0} passed=${passed:-0}
      grep -E '^ *│ =+ .* in [0-9.]+s' <<<"$clean" | sed 's/^ *│ //'
      results+=("molecule $1 ($expression): $passed/$total test runs passed (each test $runs times on each host; $log)")
      [ "$total" -gt 0 ] && [ "$passed" = "$total" ] || failed=1
    else
      for i in $(seq "$runs"); do
        if flock "$lock" molecule verify -s "$1" >"/tmp/gpubox-soak-$1-$i.log" 2>&1; then
          passed=$((passed + 1))
        else
          echo "molecule verify -s $1, run $i failed: /tmp/gpubox-soak-$1-$i.log"
        fi
      done
    fi
  else
    echo "molecule converge -s $1 failed"
  fi
  flock "$lock" molecule destroy -s "$1" >/dev/null
  if [ -z "$expression" ]; then
    results+=("molecule $1 verify: $passed/$runs passed")
    [ "$passed" = "$runs" ] || failed=1
  fi
}

started=$SECONDS
for what in $only; do
  case "$what" in
    demo) pytest_soak "demo (re-provision, three logins)" tests/test_demo.py reprovision test_reprovision ;;
    ec2) pytest_soak "ec2 --connect (re-provision, logins)" tests/test_ec2.py reprovision test_reprovision ;;
    ssh_access) molecule_soak ssh_access ;;
    # The tests that open SSH tunnels as a data scientist (autostop's minute-long idle waits are
    # not about logins and would make ten runs take hours).
    jupyter) molecule_soak jupyter "through_the_tunnel or their_own_kernels or killed_server or revoked_user" ;;
    *) echo "soak: unknown '$what' (demo, ec2, ssh_access, jupyter)" >&2; exit 2 ;;
  esac
done
echo
echo "== soak: $runs runs each, $((SECONDS - started)) s =="
printf '%s\n' "${results[@]}"
exit "$failed"
