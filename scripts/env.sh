# Source me (bash): `source scripts/env.sh` after scripts/setup.sh (Kilted), or
# `OVSEG_DISTRO=jazzy source scripts/env.sh` after `OVSEG_DISTRO=jazzy scripts/setup.sh`.
# Makes the venv's ROS 2 wheels and this workspace's install space usable: rclpy, ovseg_ros.msg,
# ovseg_ros.srv, vision_msgs, and <install base>/ovseg_ros/lib/ovseg_ros/* executables.
# Safe to source more than once; one distro per shell; refused in a shell that sourced a ROS
# distro (ROS_DISTRO set). Keeps a ROS_AUTOMATIC_DISCOVERY_RANGE already set, else LOCALHOST.
# Leaves OVSEG_VENV, OVSEG_INSTALL_BASE (and the build/log bases) set as shell variables for
# scripts that source it.

_ovseg_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/distro.sh
source "$_ovseg_root/scripts/distro.sh"
if ! _ovseg_set_distro "$_ovseg_root"; then
  unset _ovseg_root
  unset -f _ovseg_set_distro _ovseg_package_prefix
  return 1 2>/dev/null || exit 1
fi
unset -f _ovseg_set_distro _ovseg_package_prefix
# A shell that sourced a ROS 2 distro (/opt/ros/<distro>/setup.bash sets ROS_DISTRO) already has
# rclpy and its libraries: the venv's wheels on top would mix two builds of ROS in one process.
if [[ -n "${ROS_DISTRO:-}" && -z "${OVSEG_ENV_DISTRO:-}" ]]; then
  echo "env.sh: this shell has ROS 2 $ROS_DISTRO sourced; do not mix it with the venv's" \
       "$OVSEG_DISTRO_NAME wheels: build ovseg_ros in a colcon workspace on $ROS_DISTRO" \
       "(doc/installation.md), or source env.sh in a new shell without ROS" >&2
  unset _ovseg_root
  return 1 2>/dev/null || exit 1
fi
_ovseg_venv="$OVSEG_VENV"
_ovseg_setup="scripts/setup.sh"
[[ $OVSEG_DISTRO_NAME == kilted ]] || _ovseg_setup="OVSEG_DISTRO=$OVSEG_DISTRO_NAME $_ovseg_setup"

if [[ ! -x "$_ovseg_venv/bin/python" ]]; then
  echo "env.sh: $_ovseg_venv not found; run $_ovseg_setup first" >&2
  unset _ovseg_root _ovseg_venv _ovseg_setup
  return 1 2>/dev/null || exit 1
fi
export OVSEG_ENV_DISTRO="$OVSEG_DISTRO_NAME"

# Prepend $2 to the colon-separated variable named $1, once.
_ovseg_prepend() {
  local cur="${!1:-}"
  case ":$cur:" in *":$2:"*) ;; *) export "$1=$2${cur:+:$cur}" ;; esac
}

# shellcheck source=/dev/null
source "$_ovseg_venv/bin/activate"

# The venv is an ament prefix (share/<pkg>, lib/), but the wheels never say so: without this
# ament_index and colcon/CMake find no packages ("AMENT_PREFIX_PATH not set or empty").
_ovseg_prepend AMENT_PREFIX_PATH "$_ovseg_venv"
_ovseg_prepend CMAKE_PREFIX_PATH "$_ovseg_venv"

# ros-wheels-bootstrapper (a .pth hook) re-executes every venv Python once with LD_LIBRARY_PATH
# = venv/lib + site-packages/ros_*.libs, unless _ROS_WHEELS_BOOTSTRAP_COMPLETE is set. Set the
# same paths here and the guard, so processes start once, keep a fixed library order (the hook
# orders entries through a set) and also see this workspace's libraries added below.
for _ovseg_d in "$_ovseg_venv"/lib/python3.*/site-packages/ros_*.libs; do
  [[ -d "$_ovseg_d" ]] && _ovseg_prepend LD_LIBRARY_PATH "$_ovseg_d"
done
_ovseg_prepend LD_LIBRARY_PATH "$_ovseg_venv/lib"
export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1

# This workspace's install space (ovseg_ros, vision_msgs unless a prefix had one, and
# semantic_inference_msgs with --with-test-interfaces): colcon's local_setup adds
# AMENT_PREFIX_PATH, PYTHONPATH, LD_LIBRARY_PATH and CMAKE_PREFIX_PATH for each package.
if [[ -f "$OVSEG_INSTALL_BASE/local_setup.bash" ]]; then
  # shellcheck source=/dev/null
  source "$OVSEG_INSTALL_BASE/local_setup.bash"
fi

# The source tree's ovseg_ros goes before the installed copy, so edits count without a rebuild;
# ovseg_ros/__init__.py extends its __path__ to the installed copy for the generated msg/srv.
_ovseg_prepend PYTHONPATH "$_ovseg_venv/ovseg_src"

# DDS discovery: a range the user chose stays; otherwise this machine only (a camera, RViz or
# Foxglove bridge elsewhere is then invisible: say so once). Tests, CI and the demo set
# LOCALHOST themselves and pick their own ROS_DOMAIN_ID.
if [[ -z "${ROS_AUTOMATIC_DISCOVERY_RANGE:-}" ]]; then
  export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
  echo "env.sh: ROS 2 discovery limited to this machine" \
       "(ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST); for a camera or RViz on another host:" \
       "export ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET before sourcing (doc/cameras.md)" >&2
fi

unset _ovseg_root _ovseg_venv _ovseg_d _ovseg_setup
unset -f _ovseg_prepend
