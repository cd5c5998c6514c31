#!/usr/bin/env bash
# The documentation site, built as docs.ros.org builds a package's: rosdoc2 over this package
# (the pages of doc/, the Python API from the docstrings, the msg/srv definitions, the README).
#   [OVSEG_DISTRO=kilted|jazzy] bash scripts/docs.sh   -> docs_output/ovseg_ros/index.html
# after scripts/setup.sh (which installs rosdoc2 and Sphinx, scripts/distros/common.txt).
# Warnings are errors: any WARNING/ERROR line of the build fails it, listed once each.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
set +u  # the venv and colcon scripts read unset variables
# shellcheck source=scripts/env.sh
source scripts/env.sh
set -u
rm -rf docs_build docs_output docs_cross_reference
log=docs_build.log
# rosdoc2 runs Sphinx in-process; autodoc imports every module of ovseg_ros (hence the env).
if ! rosdoc2 build --package-path . --output-directory docs_output \
    --doc-build-directory docs_build --cross-reference-directory docs_cross_reference \
    >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "docs.sh: rosdoc2 failed (full log: $log)" >&2
  exit 1
fi
problems="$(grep -E 'WARNING|ERROR|CRITICAL|Traceback' "$log" | sort -u || true)"
if [[ -n "$problems" ]]; then
  echo "$problems" >&2
  echo "docs.sh: $(wc -l <<<"$problems") warning(s) in the documentation build (full log:" \
       "$log); warnings are errors" >&2
  exit 1
fi
echo "docs.sh: built docs_output/ovseg_ros/index.html with no warnings"
