#!/usr/bin/env bash
# The main job on a fresh machine: set up (idempotent), then replay the shipped sample images
# through the segmentation node over ROS 2 and save its overlays to demo_out/.
#   scripts/demo.sh [ovseg_ros.node.demo options, e.g. --frames 10 --out my_dir]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# The demo's replay and node talk on this machine only, whatever the calling shell chose.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
set +u
# shellcheck source=scripts/env.sh
source scripts/env.sh
set -u
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$((100 + $$ % 100))}"
exec python -m ovseg_ros.node.demo "$@"
