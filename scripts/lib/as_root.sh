# Sourced first by the top-level scripts: they need root (apt-get, network namespaces). A root
# shell (a fresh Debian has no sudo) runs them as they are; a user is asked once through sudo.
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then
    exec sudo --preserve-env=VPP_BIN,VPP_PLUGIN_PATH,VPPCTL,VPP_POLL_SLEEP_USEC,VCRA_BUILD_DIR,CI "$0" "$@"
  fi
  echo "$0 needs root: run it as root, or install sudo" >&2
  exit 1
fi
