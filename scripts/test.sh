#!/usr/bin/env bash
# The project's test command (after scripts/setup.sh --with-test-interfaces):
#   [OVSEG_DISTRO=kilted|jazzy] scripts/test.sh [--ros-only] [--no-lint] [extra pytest args]
# Lint and the pytest suite over real rclpy on a per-run ROS domain, in the distro's venv
# (scripts/distro.sh); the suite runs the benchmarks as a smoke (test/bench/test_bench_smoke.py).
# --ros-only: only the tests marked `ros` (every test whose module reaches rclpy, see
# test/conftest.py), no lint: what CI runs on the distros after the first (.ci/run).
# The inner loop: `scripts/test.sh -m "not slow" -n 3` (pytest-xdist, 3 workers; the slow
# tests are storms, soaks, load, process signals, workspace builds, Ray clusters, model exports;
# those marked `quiet` have time bounds and run one at a time, alone).
# --no-lint: no ruff (a second call in one CI step).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ROS_ONLY=0
LINT=1
while [[ "${1:-}" == --ros-only || "${1:-}" == --no-lint ]]; do
  [[ "$1" == --ros-only ]] && ROS_ONLY=1 && LINT=0
  [[ "$1" == --no-lint ]] && LINT=0
  shift
done

# Test traffic stays on this machine, whatever range the calling shell chose (env.sh keeps a
# range already set, and the tests' own conftest.py sets LOCALHOST again).
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
set +u  # the venv and colcon scripts read unset variables
# shellcheck source=scripts/env.sh
source scripts/env.sh
set -u

# The generated messages must exist: a half-built workspace would otherwise show up as
# confusing import errors deep in the test run. vision_msgs is built by every setup.sh, unless
# a prefix already had one (then that one is used); semantic_inference_msgs only for tests.
if [[ ! -d "$OVSEG_INSTALL_BASE/ovseg_ros" ]] \
    || [[ ! -d "$OVSEG_INSTALL_BASE/semantic_inference_msgs" ]] \
    || ! python -c 'import vision_msgs.msg' 2>/dev/null; then
  echo "test.sh: $OVSEG_INSTALL_BASE/ovseg_ros, .../semantic_inference_msgs or vision_msgs" \
       "missing; run scripts/setup.sh --with-test-interfaces (same OVSEG_DISTRO)" >&2
  exit 1
fi
echo "== ROS 2 $OVSEG_DISTRO_NAME: $(python -c 'import sys; print(sys.executable)')"

if [[ $LINT == 1 ]]; then
  echo "== ruff"
  ruff check .
fi

# One DDS domain per run (1..101 is safe on Linux), so parallel runs never hear each other;
# discovery stays on this machine (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST above).
export ROS_DOMAIN_ID="${OVSEG_TEST_DOMAIN_ID:-$((10 + $$ % 90))}"
echo "== pytest (ROS_DOMAIN_ID=$ROS_DOMAIN_ID)"
select=()
[[ $ROS_ONLY == 1 ]] && select=(-m ros)
rc=0
python -m pytest -q --durations=15 test "${select[@]}" "$@" || rc=$?
if [[ $rc == 5 ]]; then
  echo "test.sh: pytest collected no tests; treating that as a failure" >&2
  exit 1
elif [[ $rc != 0 ]]; then
  exit "$rc"
fi
