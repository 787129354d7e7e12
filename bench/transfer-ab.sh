#!/usr/bin/env bash
# Side-by-side transfer benchmark: the same phases of bench/transfer.ts run against a baseline
# tree and this one, alternating (base, new, base, new, ...) so both see the same machine load,
# each on its own copy of one seeded data directory. Prints one JSON line per phase and tree.
#
#   bench/transfer-ab.sh BASE_COMMIT [pairs] [--phases PHASE,PHASE...]
#
# e.g. bench/transfer-ab.sh 50da229 1000000
#      bench/transfer-ab.sh 05a1694 1000000 --phases bundle-import
set -euo pipefail
base_commit=$1
pairs=${2:-1000000}
phases="bundle-export-copy bundle-export-move bundle-import setupbin-export"
if [ "${3:-}" = --phases ]; then phases=${4//,/ }; fi
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/amt-scs-transfer-ab-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/base" "$work/seed"
git -C "$here" archive "$base_commit" | tar -x -C "$work/base"
ln -s "$here/node_modules" "$work/base/node_modules"
# A baseline with the native AES-GCM builds it too (its own build/), or it would run the
# fallback: the comparison would be of the addon, not of the change.
if [ -f "$work/base/binding.gyp" ]; then
  (cd "$work/base" && node --import tsx scripts/build-native.ts >&2)
fi
[ -f "$here/binding.gyp" ] && [ ! -f "$here/build/Release/aead.node" ] && echo "warning: this tree's native AES-GCM is not built" >&2
# The seed (generatePsks) is not measured; the baseline tree makes it.
(cd "$work/base" && node --import tsx bench/transfer.ts --phase seed "$work/seed" "$pairs" >/dev/null)
# bundle-import reads the bundle of each tree's bundle-export-move phase; without that phase the
# baseline tree writes one bundle into the seed, and both trees import the same file.
case " $phases " in
  *" bundle-export-move "*) ;;
  *" bundle-import "*) (cd "$work/base" && node --import tsx bench/transfer.ts --phase bundle-export-move "$work/seed" 0 >/dev/null) ;;
esac
cp -r "$work/seed" "$work/run-base"
cp -r "$work/seed" "$work/run-new"
echo "{\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"pairs\":$pairs,\"base\":\"$base_commit\"}"
for phase in $phases; do
  for tree in base new; do
    root=$here
    [ "$tree" = base ] && root=$work/base
    out=$(cd "$root" && node --import tsx bench/transfer.ts --phase "$phase" "$work/run-$tree" 0)
    echo "{\"phase\":\"$phase\",\"tree\":\"$tree\",\"loadavg1\":$(cut -d' ' -f1 /proc/loadavg),\"result\":$out}"
  done
done
