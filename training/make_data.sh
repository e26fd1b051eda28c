#!/bin/sh
# Build the training/benchmark folder: one folder holding the photo and texture sets of ../shared/data
# (as symlinks, so each set keeps its manifest and licences) and two lists that split the held-out
# files of both sets (each set's val.txt) in two halves, names relative to the folder:
#   val.txt   the selection split: `inpaint train --val-list DIR/val.txt` picks best.safetensors on it;
#   test.txt  the held-out test images: `inpaint train` leaves them out too, nothing selects on them, and
#             `inpaint benchmark --data DIR` scores them.
# Each set's held-out names are sorted (byte order) and dealt out alternately, the first to test.txt, the
# second to val.txt, and so on, so both lists hold photos and textures and the split is the same on every
# machine. Blank lines and # comments of the sets' lists are dropped, as `inpaint train` reads lists.
#
#   sh training/make_data.sh ../shared/data /work/data_all
set -eu
src=$(cd "${1:?usage: make_data.sh SHARED_DATA_DIR OUT_DIR}" && pwd)
out=${2:?usage: make_data.sh SHARED_DATA_DIR OUT_DIR}
mkdir -p "$out"
val_tmp="$out/.val.txt.$$.tmp"
test_tmp="$out/.test.txt.$$.tmp"
trap 'rm -f "$val_tmp" "$test_tmp"' EXIT
trap 'exit 1' HUP INT TERM
: > "$val_tmp"
: > "$test_tmp"
for set in photos textures; do
    [ -d "$src/$set" ] || continue
    if [ ! -f "$src/$set/val.txt" ]; then
        echo "make_data.sh: $src/$set/val.txt: no such file; every set needs its list of held-out files" >&2
        exit 1
    fi
    ln -sfn "$src/$set" "$out/$set"
    before_val=$(wc -l < "$val_tmp")
    before_test=$(wc -l < "$test_tmp")
    # one name per line, comments, surrounding blanks and CRs dropped, sorted, duplicates once; prefixed
    # with the set's folder; odd lines to test.txt, even lines to val.txt
    tr -d '\r' < "$src/$set/val.txt" |
        sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e '/^$/d' |
        LC_ALL=C sort -u |
        awk -v set="$set" -v val="$val_tmp" -v test="$test_tmp" \
            '{ if (NR % 2 == 1) print set "/" $0 >> test; else print set "/" $0 >> val }'
    n_val=$(($(wc -l < "$val_tmp") - before_val))
    n_test=$(($(wc -l < "$test_tmp") - before_test))
    echo "$set: $((n_val + n_test)) held out: $n_test in test.txt, $n_val in val.txt" >&2
done
echo "total: $(wc -l < "$test_tmp" | tr -d ' ') in test.txt (report), $(wc -l < "$val_tmp" | tr -d ' ') in val.txt (selection)" >&2
mv "$test_tmp" "$out/test.txt"
mv "$val_tmp" "$out/val.txt"
echo "$out"
