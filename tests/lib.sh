# tests/lib.sh - the harness shared by the script tests (sourced, not run):
# $SYNTH (default ./synth), a temporary folder $T removed on exit, counters
# and the checks. Each script ends with: echo "$pass passed, $fail failed".
SYNTH=${SYNTH:-./synth}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()   { pass=$((pass + 1)); echo "ok   $1"; }
bad()  { fail=$((fail + 1)); echo "FAIL $1"; }
check() { # name, command...: expects exit 0
    name=$1; shift
    if "$@" >"$T/out" 2>"$T/err"; then ok "$name"; else bad "$name (exit $?)"; cat "$T/err"; fi
}
check_fail() { # name, expected exit code, pattern expected on stderr, command...
    name=$1; code=$2; pat=$3; shift 3
    "$@" >"$T/out" 2>"$T/err"; rc=$?
    if [ $rc -eq "$code" ] && grep -q -- "$pat" "$T/err"; then ok "$name"
    else bad "$name (exit $rc, want $code and /$pat/)"; cat "$T/err"; fi
}
