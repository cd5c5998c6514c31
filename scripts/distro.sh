# Sourced by setup.sh, env.sh and test.sh (bash): which ROS 2 distro, and where its venv and
# colcon bases live. One distro = one requirement file scripts/distros/<distro>.txt.
#   OVSEG_DISTRO=kilted (default): .venv, build/, install/, log/ (the names used so far)
#   OVSEG_DISTRO=jazzy:            .venv-jazzy, build-jazzy/, install-jazzy/, log-jazzy/
# Sets OVSEG_DISTRO_NAME, OVSEG_VENV, OVSEG_BUILD_BASE, OVSEG_INSTALL_BASE, OVSEG_LOG_BASE
# (absolute paths under $1, the repository root); returns 1 for an unknown distro, or when
# this shell already uses another one.

_ovseg_set_distro() {
  local root="$1" name="${OVSEG_DISTRO:-kilted}" suffix=""
  if [[ "$name" == common || ! -f "$root/scripts/distros/$name.txt" ]]; then
    local known
    known="$(cd "$root/scripts/distros" && ls -- *.txt | sed -e 's/\.txt$//' -e '/^common$/d' \
      | tr '\n' ' ')"
    echo "OVSEG_DISTRO='$name' is not a known distro (one of: ${known% })" >&2
    return 1
  fi
  # One distro per shell: env.sh exports OVSEG_ENV_DISTRO, and a second distro's libraries on
  # the same LD_LIBRARY_PATH would mix with the first's (the first wins, per library).
  if [[ -n "${OVSEG_ENV_DISTRO:-}" && "$OVSEG_ENV_DISTRO" != "$name" ]]; then
    echo "this shell already uses ROS 2 $OVSEG_ENV_DISTRO (scripts/env.sh); open a new shell" \
         "for $name" >&2
    return 1
  fi
  [[ "$name" == kilted ]] || suffix="-$name"
  OVSEG_DISTRO_NAME="$name"
  OVSEG_VENV="$root/.venv$suffix"
  OVSEG_BUILD_BASE="$root/build$suffix"
  OVSEG_INSTALL_BASE="$root/install$suffix"
  OVSEG_LOG_BASE="$root/log$suffix"
}

# The first prefix on AMENT_PREFIX_PATH, outside the folder $2, whose ament index lists the
# package $1 (printed; nothing when none): setup.sh builds vision_msgs only where no prefix has
# the real one (ROS 2 from apt, installed through rosdep), or both would shadow each other.
_ovseg_package_prefix() {
  local name="$1" mine prefix
  mine="$(realpath -m "$2")"
  local -a prefixes
  IFS=: read -ra prefixes <<<"${AMENT_PREFIX_PATH:-}"
  for prefix in "${prefixes[@]}"; do
    [[ -n "$prefix" ]] || continue
    case "$(realpath -m "$prefix")/" in "$mine"/*) continue ;; esac
    if [[ -f "$prefix/share/ament_index/resource_index/packages/$name" ]]; then
      echo "$prefix"
      return 0
    fi
  done
}
