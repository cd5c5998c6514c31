#!/usr/bin/env bash
# The browser the console's tests and benchmark drive (test/cli/test_console_browser.py,
# `python -m ovseg_ros.bench --only console`): Debian's chromium and chromium-driver, driven by
# Selenium (scripts/distros/common.txt) with the system browser; nothing is downloaded at test
# time. As root, or with sudo:
#   bash scripts/test_browser.sh
# Does nothing when both are installed. CI (.ci/run) runs it on its fresh machine. On Ubuntu,
# whose chromium is a snap, point the tests at it: chromium and chromedriver must be on PATH.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  echo "test_browser.sh: $(chromium --version 2>/dev/null | head -n1) and its driver are installed"
  exit 0
fi
sudo=()
[[ $(id -u) == 0 ]] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq chromium chromium-driver >/dev/null
echo "test_browser.sh: installed $(chromium --version 2>/dev/null | head -n1)"
