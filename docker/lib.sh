# docker/lib.sh - the counters and report lines of the container tests
# (sourced by docker/test-deploy.sh and docker/test-fresh.sh, not run):
# ok/bad count a check, note prints a detail line, finish prints
# "N passed, M failed" and exits non-zero when a check failed.
pass=0; fail=0
ok()   { pass=$((pass + 1)); echo "ok   $*"; }
bad()  { fail=$((fail + 1)); echo "FAIL $*"; }
note() { echo "     $*"; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }
