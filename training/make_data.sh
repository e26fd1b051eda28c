#!/bin/sh
# Build the training/benchmark folder the bundled checkpoints were made with: one folder holding the
# photo and texture sets of ../shared/data (as symlinks, so each set keeps its manifest and licences)
# and one val.txt that lists both sets' validation files. `inpaint train --val-list` leaves those files
# out of training; `inpaint benchmark --data` scores only them.
#
#   sh training/make_data.sh ../shared/data /work/data_all
set -eu
src=$(cd "${1:?usage: make_data.sh SHARED_DATA_DIR OUT_DIR}" && pwd)
out=${2:?usage: make_data.sh SHARED_DATA_DIR OUT_DIR}
mkdir -p "$out"
: > "$out/val.txt.tmp"
for set in photos textures; do
    [ -d "$src/$set" ] || continue
    ln -sfn "$src/$set" "$out/$set"
    # one name per line, prefixed with the set's folder; blank lines dropped
    sed -e '/^[[:space:]]*$/d' -e "s#^#$set/#" "$src/$set/val.txt" >> "$out/val.txt.tmp"
done
mv "$out/val.txt.tmp" "$out/val.txt"
echo "$out"
