#!/usr/bin/env bash
# Dependency check for CI (docs/security.md, "Dependencies"): `npm audit` of the runtime tree
# (--omit=dev) fails the run on any high or critical advisory. When the registry's advisory
# service cannot be asked (an error answer such as 405, or no network) there is no verdict to act
# on: the script says so loudly and passes, rather than turning every run red for a reason that
# is not the code's. Findings are never waved through.
set -euo pipefail
cd "$(dirname "$0")/.."
set +e
report=$(npm audit --omit=dev --json 2>/dev/null)
set -e
printf '%s' "$report" | node -e '
let text = "";
process.stdin.on("data", (c) => (text += c));
process.stdin.on("end", () => {
  let j;
  try {
    j = JSON.parse(text);
  } catch {
    j = undefined;
  }
  const counts = j?.metadata?.vulnerabilities;
  if (counts === undefined) {
    const why = j?.message ?? j?.error?.summary ?? "no JSON answer";
    console.log(`npm audit: NOT CHECKED - the advisory service gave no verdict (${why}); see docs/security.md`);
    return;
  }
  const bad = (counts.high ?? 0) + (counts.critical ?? 0);
  console.log(`npm audit (runtime dependencies): ${JSON.stringify(counts)}`);
  if (bad > 0) {
    for (const [name, v] of Object.entries(j.vulnerabilities ?? {})) {
      if (v.severity === "high" || v.severity === "critical") console.log(`  ${v.severity}: ${name} ${v.range ?? ""}`);
    }
    process.exitCode = 1;
  }
});
'
