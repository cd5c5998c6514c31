#!/usr/bin/env bash
# One command from a fresh clone to a built workspace, without a ROS distro:
#   [OVSEG_DISTRO=kilted|jazzy] scripts/setup.sh [--with-test-interfaces] [--force] [--no-link]
# Creates a venv (Python 3.11 + PyTorch + the ROS 2 wheels of one distro from PyPI + colcon),
# installs this package editable, patches the wheels' CMake exports and runs `colcon build`.
# Kilted (default): .venv, build/, install/, log/; Jazzy: .venv-jazzy, build-jazzy/, ... (see
# scripts/distro.sh). Idempotent: the pip steps are skipped while the requirement lists are
# unchanged (stamp file), so a re-run only re-checks the CMake patch and runs colcon.
#   --with-test-interfaces  also build semantic_inference_msgs (ovseg_ros/frame/definitions:
#                           the FeatureImage interface, for tests; users install MIT-SPARK's)
#   --force                 re-run the pip steps even if the stamp matches
#   --no-link               pip-install torch even where a sibling venv has it (set-ups of
#                           two distros at once: the sibling's may be half-installed)
# Every install also builds the vision_msgs messages the node publishes (LabelInfo, the object
# detections; ovseg_ros/frame/definitions), so it publishes ~/label_info and ~/detections,
# unless a prefix on AMENT_PREFIX_PATH already has vision_msgs.
# Then: `[OVSEG_DISTRO=...] source scripts/env.sh`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

WITH_TEST_INTERFACES=0
FORCE=0
LINK=1
for arg in "$@"; do
  case "$arg" in
    --with-test-interfaces) WITH_TEST_INTERFACES=1 ;;
    --force) FORCE=1 ;;
    --no-link) LINK=0 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

# shellcheck source=scripts/distro.sh
source "$ROOT/scripts/distro.sh"
_ovseg_set_distro "$ROOT" || exit 2
DISTRO="$OVSEG_DISTRO_NAME"
VENV="$OVSEG_VENV"
PYTHON="${OVSEG_PYTHON:-python3}"
STAMP="$VENV/.ovseg-setup.sha256"

# --- requirements -----------------------------------------------------------------------------
# torch/torchvision: exactly the releases stored on this machine's disk; /etc/xdg/pip caps both
# at these versions, and anything else would be a multi-GB download (or not resolvable offline).
TORCH_REQS=(torch==2.14.1 torchvision==0.29.1)
# Everything else, in files (one place each, see their headers): the package's run-time ranges
# (requirements.txt, read by setup.py), the pins every venv shares (scripts/distros/common.txt)
# and the distro's own ROS 2 wheel set and Python pins (scripts/distros/<distro>.txt).
REQ_FILES=(requirements.txt scripts/distros/common.txt "scripts/distros/$DISTRO.txt")

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# pip prints one "Location ... is ignored" warning per package for this machine's file:// index
# entries that do not exist; they are noise. pipefail keeps pip's own exit status.
quiet_pip() {
  "$VENV/bin/python" -m pip "$@" --progress-bar off 2>&1 \
    | { grep -v -e "is ignored: it is neither a file nor a directory" || true; }
}

# --- interpreter and venv ---------------------------------------------------------------------
# The ROS wheels of both distros exist for CPython 3.10, 3.11 and 3.12. 3.11 is the default
# because this machine's torch wheel is cp311: any other version downloads torch from PyPI
# (the CUDA build, with about 3 GB of NVIDIA libraries).
if ! "$PYTHON" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))' \
    2>/dev/null; then
  echo "setup.sh: need Python 3.10 to 3.12 (the ROS 2 wheels' builds); '$PYTHON' is not." >&2
  echo "          set OVSEG_PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
  log "creating $VENV ($DISTRO) with $("$PYTHON" -c 'import sys; print(sys.executable)')"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
fi

# The stamp covers everything that decides what pip installs.
want_hash="$(
  {
    "$VENV/bin/python" -c 'import sys; print(sys.version)'
    printf '%s\n' "${TORCH_REQS[@]}"
    cat "${REQ_FILES[@]}" setup.py
  } | sha256sum | cut -d' ' -f1
)"

# --- pip --------------------------------------------------------------------------------------
if [[ $FORCE == 1 ]] || [[ "$(cat "$STAMP" 2>/dev/null || true)" != "$want_hash" ]]; then
  rm -f "$STAMP"
  # One torch install for all venvs of this checkout: hard-link it from a sibling venv of the
  # same Python that has it (about 5 GB and a minute of unpacking saved); pip below then finds
  # it installed. Without one (or across file systems) pip installs it.
  for sibling in "$ROOT"/.venv "$ROOT"/.venv-*; do
    [[ $LINK == 1 && "$sibling" != "$VENV" && -x "$sibling/bin/python" ]] || continue
    same="$("$sibling/bin/python" -c 'import sys; print(sys.version)')"
    [[ "$same" == "$("$VENV/bin/python" -c 'import sys; print(sys.version)')" ]] || continue
    "$sibling/bin/python" -m pip show -q torch >/dev/null 2>&1 || continue
    if "$sibling/bin/python" scripts/link_venv_packages.py "$VENV" torch torchvision \
        --skip numpy --skip setuptools; then
      break
    fi
  done
  log "pip: torch (from this machine's disk)"
  quiet_pip install -q "${TORCH_REQS[@]}"
  log "pip: ROS 2 $DISTRO wheels, colcon, model and test dependencies"
  req_args=()
  for f in "${REQ_FILES[@]}"; do req_args+=(-r "$f"); done
  quiet_pip install -q "${req_args[@]}"
  log "pip: ovseg_ros (editable)"
  # No build isolation: setuptools is already in the venv (colcon-core pins it below 80), and an
  # isolated build would fetch another copy from the index on every run. Dependencies are not
  # skipped, so anything setup.py adds later is installed too. Two set-ups at once (one per
  # distro) take turns: the editable build writes ovseg_ros.egg-info into this checkout.
  if command -v flock >/dev/null; then
    ( flock 9; quiet_pip install -q --no-build-isolation -e . ) 9>"$ROOT/.ovseg-editable.lock"
  else
    quiet_pip install -q --no-build-isolation -e .
  fi
  echo "$want_hash" > "$STAMP"
else
  log "pip: up to date (stamp $STAMP)"
fi

# --- patch the wheels' CMake exports ----------------------------------------------------------
# The *_rosidl_generator_pyExport.cmake files carry the include dirs of the machine the wheels
# were built on (/opt/python/cp311-cp311/... for the cp311 wheels, of both distros). Point them
# at this interpreter's headers and this venv's numpy. Runs every time (cheap, and a reinstalled
# wheel brings the old paths back).
"$VENV/bin/python" - "$VENV" <<'PY'
import pathlib, sys, sysconfig
import numpy

py = f"{sys.version_info[0]}.{sys.version_info[1]}"
build_prefix = f"/opt/python/cp{py.replace('.', '')}-cp{py.replace('.', '')}"
subs = [  # numpy 2 and numpy 1 include dirs, whichever the wheels name
    (build_prefix + f"/lib/python{py}/site-packages/numpy/_core/include", numpy.get_include()),
    (build_prefix + f"/lib/python{py}/site-packages/numpy/core/include", numpy.get_include()),
    (build_prefix + f"/include/python{py}", sysconfig.get_paths()["include"]),
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
# env.sh gives colcon/CMake the venv as an ament/CMake prefix and sets the library path. A
# build needs no DDS discovery: keep env.sh from announcing its default.
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
set +u
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"
set -u
# vision_msgs (LabelInfo, Detection2D/3D) from its definitions in the package, so the node
# publishes ~/label_info and ~/detections in this install too; unless a prefix outside this
# workspace already has one (the real package, with ROS 2 from apt through rosdep).
PATHS=(.)
# shellcheck source=scripts/distro.sh
source "$ROOT/scripts/distro.sh"  # env.sh unset its functions
own_vision="$(_ovseg_package_prefix vision_msgs "$OVSEG_INSTALL_BASE")"
if [[ -n "$own_vision" ]]; then
  log "vision_msgs: using the one in $own_vision (not building ours)"
  # One built here earlier would come first on the paths and hide it.
  rm -rf "$OVSEG_INSTALL_BASE/vision_msgs" "$OVSEG_BUILD_BASE/vision_msgs"
else
  PATHS+=(ovseg_ros/frame/definitions/vision_msgs)
fi
[[ $WITH_TEST_INTERFACES == 1 ]] && PATHS+=(ovseg_ros/frame/definitions/semantic_inference_msgs)
log "colcon build: ${PATHS[*]}"
# Ninja (from the venv) builds the generated typesupport code ~25% faster than make here. CMake
# cannot switch generators in an existing build dir, so drop dirs configured with another one.
# A build dir configured from another source dir (a package that moved) is dropped too.
for cache in "$OVSEG_BUILD_BASE"/*/CMakeCache.txt; do
  [[ -f "$cache" ]] || continue
  src="$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$cache")"
  if ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$cache" || [[ ! -d "$src" ]]; then
    rm -rf "$(dirname "$cache")"
  fi
done
# colcon's ament prefix-path extension only chains underlay workspaces into install/setup.*; the
# venv is not a workspace (no local_setup.*), so it would just warn about it on every build.
# Each distro has its own build, install and log base (scripts/distro.sh).
COLCON_EXTENSION_BLOCKLIST=colcon_core.prefix_path.ament \
  colcon --log-base "$OVSEG_LOG_BASE" build --paths "${PATHS[@]}" \
    --build-base "$OVSEG_BUILD_BASE" --install-base "$OVSEG_INSTALL_BASE" \
    --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF -G Ninja
if [[ $DISTRO == kilted ]]; then
  log "done. Use it with: source scripts/env.sh"
else
  log "done. Use it with: OVSEG_DISTRO=$DISTRO source scripts/env.sh"
fi
