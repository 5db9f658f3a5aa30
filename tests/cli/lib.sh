# lib.sh - what the CLI test scripts share (sourced; they set $tmp first):
# pass/fail counting, the relative error of two float32 files without
# Python, a fixture's token ids, and the check that a bad invocation fails
# with one line and the expected exit code.
pass=0; fail=0
ok()  { pass=$((pass+1)); echo "ok   $1"; }
bad() { fail=$((fail+1)); echo "FAIL $1"; }

# max |a-b| / max |b| over two float32 files, via od (no Python needed)
rel_err() {
  paste <(od -An -v -f -w4 "$1") <(od -An -v -f -w4 "$2") |
    awk '{d=$1-$2; if(d<0)d=-d; if(d>m)m=d; r=$2<0?-$2:$2; if(r>M)M=r; n++} END{if(n==0){print "inf"}else{printf "%.3g\n", m/M}}'
}

# the "tokens" array of a fixture folder's fixture.json, comma-separated
tokens_of() { tr -d ' \n\r\t' <"$1/fixture.json" | sed -n 's/.*"tokens":\[\([0-9,]*\)\].*/\1/p'; }

# expect_fail NAME EXIT_CODE PATTERN -- command...
expect_fail() {
  local name=$1 code=$2 pat=$3; shift 4
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  local lines; lines=$(wc -l <"$tmp/err")
  if [ "$rc" = "$code" ] && grep -q -- "$pat" "$tmp/err" && [ "$lines" = 1 ]; then ok "$name"
  else bad "$name (exit $rc, stderr: $(head -c 300 "$tmp/err"))"; fi
}
