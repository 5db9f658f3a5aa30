#!/usr/bin/env bash
# test_preprocess.sh - `gemma preprocess` end to end: the float32 file it
# writes hashes like Hugging Face's pixel_values (the fixture manifest's
# sha256 for each crop), the layouts and the summary line are right, an
# existing output is never replaced without --force (nor the input ever),
# and bad invocations fail with one line and the documented exit code.
# usage: test_preprocess.sh GEMMA_BINARY FIXTURES_DIR TMPDIR
set -u
gemma=$1; fixtures=$2/images; tmp=$3/cli-preprocess
rm -rf "$tmp"; mkdir -p "$tmp"
. "$(dirname "$0")/lib.sh"

# the recorded sha256 of crop K of the run (case, size, pan_and_scan), from manifest.json, without Python
manifest_sha() { # case size pas k
  tr -d ' \n' <"$fixtures/manifest.json" |
    sed 's/{"name":/\n&/g' | grep "^{\"name\":\"$1\"" | sed 's/{"size":/\n&/g' |
    grep "^{\"size\":$2,\"pan_and_scan\":$3," | head -n 1 |
    sed -n 's/.*"sha256":\[\([^]]*\)\].*/\1/p' | tr -d '"' | cut -d, -f$(($4 + 1))
}
crop_sha() { # file k floats_per_crop
  tail -c +$(($2 * $3 * 4 + 1)) "$1" | head -c $(($3 * 4)) | sha256sum | cut -d' ' -f1
}

check() { # name case file size pas
  local name=$1 case=$2 file=$3 size=$4 pas=$5 flags=""
  [ "$pas" = 1 ] && flags="--pan-and-scan"
  if ! "$gemma" preprocess --image "$fixtures/$file" -o "$tmp/$case.$size.f32" --size "$size" $flags 2>"$tmp/err"; then
    bad "$name: $(cat "$tmp/err")"; return
  fi
  local crops; crops=$(sed -n 's/.* -> \([0-9]*\) crops\{0,1\} x .*/\1/p' "$tmp/err")
  local per=$((3 * size * size)) bytes; bytes=$(stat -c %s "$tmp/$case.$size.f32")
  [ "$bytes" = $((crops * per * 4)) ] || { bad "$name: $bytes bytes for $crops crops"; return; }
  for ((k = 0; k < crops; k++)); do
    local want got; want=$(manifest_sha "$case" "$size" "$pas" "$k"); got=$(crop_sha "$tmp/$case.$size.f32" "$k" "$per")
    [ -n "$want" ] && [ "$got" = "$want" ] || { bad "$name: crop $k sha $got, HF $want"; return; }
  done
  ok "$name ($crops crop(s), HF-identical)"
}

check "xray png 896"             xray_grey     xray_grey.png     896 0
check "xray png 224 pan-and-scan" xray_grey    xray_grey.png     224 1
check "16-bit grey png 896"      grey16        grey16.png        896 0
check "exact 896 (no resize)"    exact_896     exact_896.png     896 0
check "1001x300 pan-and-scan 64" pas_1001x300  pas_1001x300.png  64 1
check "tiny 7x5 at 896"          tiny_7x5      tiny_7x5.png      896 0
check "bmp 224"                  bmp24         photo24.bmp       224 0

# summary line, HWC = CHW transposed (first pixel's three channels)
"$gemma" preprocess --image "$fixtures/tiny_7x5.png" -o "$tmp/chw.f32" --size 4 2>"$tmp/err"
grep -q "png 7x5 -> 1 crop x CHW \[3,4,4\] float32" "$tmp/err" && ok "summary line" || bad "summary: $(cat "$tmp/err")"
"$gemma" preprocess --image "$fixtures/tiny_7x5.png" -o "$tmp/hwc.f32" --size 4 --layout hwc 2>"$tmp/err"
grep -q "HWC \[4,4,3\]" "$tmp/err" && ok "hwc summary" || bad "hwc summary: $(cat "$tmp/err")"
chw0=$(od -An -v -f -w4 "$tmp/chw.f32" | awk 'NR==1||NR==17||NR==33' | tr -s ' \n' ' ')
hwc0=$(od -An -v -f -w4 "$tmp/hwc.f32" | awk 'NR<=3' | tr -s ' \n' ' ')
[ "$chw0" = "$hwc0" ] && ok "hwc is chw transposed" || bad "hwc '$hwc0' vs chw '$chw0'"

# never replace what the user has
echo keep >"$tmp/keep.f32"
expect_fail "existing output refused" 1 "exists" -- "$gemma" preprocess --image "$fixtures/tiny_7x5.png" -o "$tmp/keep.f32"
[ "$(cat "$tmp/keep.f32")" = keep ] && ok "existing file kept" || bad "existing file replaced"
"$gemma" preprocess --image "$fixtures/tiny_7x5.png" -o "$tmp/keep.f32" --size 2 --force 2>/dev/null &&
  [ "$(stat -c %s "$tmp/keep.f32")" = 48 ] && ok "--force replaces" || bad "--force"
cp "$fixtures/tiny_7x5.png" "$tmp/in.png"
expect_fail "output = input refused" 1 "replace the input" -- "$gemma" preprocess --image "$tmp/in.png" -o "$tmp/in.png" --force
cmp -s "$tmp/in.png" "$fixtures/tiny_7x5.png" && ok "input untouched" || bad "input image changed"
expect_fail "failed run keeps output" 1 "CMYK" -- "$gemma" preprocess --image "$fixtures/cmyk.jpg" -o "$tmp/keep.f32" --force
[ "$(stat -c %s "$tmp/keep.f32")" = 48 ] && ok "output kept after a failure" || bad "output clobbered by a failure"

# bad invocations and bad images: one line, exit 2 (usage) or 1 (runtime)
printf 'not an image' >"$tmp/notes.txt"
head -c 1000 "$fixtures/xray_grey.png" >"$tmp/cut.png"
: >"$tmp/empty.png"
expect_fail "no image"      2 "missing --image"  -- "$gemma" preprocess -o "$tmp/x.f32"
expect_fail "no output"     2 "missing -o"       -- "$gemma" preprocess --image "$fixtures/tiny_7x5.png"
expect_fail "bad size"      2 "size"             -- "$gemma" preprocess --image "$fixtures/tiny_7x5.png" -o "$tmp/x.f32" --size 0
expect_fail "bad layout"    2 "layout"           -- "$gemma" preprocess --image "$fixtures/tiny_7x5.png" -o "$tmp/x.f32" --layout nchw
expect_fail "bad ratio"     2 "min-ratio"        -- "$gemma" preprocess --image "$fixtures/tiny_7x5.png" -o "$tmp/x.f32" --min-ratio x
expect_fail "bad option"    2 "unknown option"   -- "$gemma" preprocess --frobnicate
expect_fail "missing file"  1 "nope.png"         -- "$gemma" preprocess --image "$tmp/nope.png" -o "$tmp/x.f32"
expect_fail "not an image"  1 "not an image"     -- "$gemma" preprocess --image "$tmp/notes.txt" -o "$tmp/x.f32"
expect_fail "truncated png" 1 "cut.png"          -- "$gemma" preprocess --image "$tmp/cut.png" -o "$tmp/x.f32"
expect_fail "empty file"    1 "empty"            -- "$gemma" preprocess --image "$tmp/empty.png" -o "$tmp/x.f32"
expect_fail "cmyk jpeg"     1 "CMYK"             -- "$gemma" preprocess --image "$fixtures/cmyk.jpg" -o "$tmp/x.f32"
[ ! -e "$tmp/x.f32" ] && ok "no output file after failures" || bad "output file written despite failure"
"$gemma" preprocess --help | grep -q "pan-and-scan" && ok "--help" || bad "--help"
"$gemma" --help | grep -q "preprocess" && ok "listed in gemma --help" || bad "not in gemma --help"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
