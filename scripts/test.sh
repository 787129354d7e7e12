#!/usr/bin/env bash
# The test command (npm test): type-check everything (tests included), lint, then run every
# *.test.ts with node's own test runner. Node 20 has no --test globs, so the shell finds files.
set -euo pipefail
cd "$(dirname "$0")/.."
lint=1
files=()
for a in "$@"; do
  case "$a" in
    --no-lint) lint=0 ;;
    *) files+=("$a") ;;
  esac
done
echo "== typecheck"
npx tsc --noEmit -p tsconfig.json
npx tsc --noEmit -p src/console/web
if [ "$lint" = 1 ]; then
  echo "== lint"
  npx eslint . --max-warnings 0
fi
if [ ${#files[@]} -eq 0 ]; then
  mapfile -t files < <(find src simulator test bench -name '*.test.ts' -not -path '*/node_modules/*' | sort)
fi
echo "== tests (${#files[@]} files)"
mkdir -p test-output
exec node --import tsx --no-warnings=ExperimentalWarning --test --test-reporter=spec "${files[@]}"
