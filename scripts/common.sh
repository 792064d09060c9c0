# scripts/common.sh - shared by scripts/quickstart and scripts/test.
# Sourced, not run.

KG_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Debian packages kmipgw needs to build, test and run against SoftHSM (and, for
# scripts/test, openCryptoki's soft token: scripts/ock-token).
KG_PACKAGES=(
  build-essential pkg-config meson ninja-build
  libssl-dev openssl
  libp11-dev libp11-kit-dev softhsm2 opencryptoki
  libsqlite3-dev libpq-dev postgresql libyaml-dev libcunit1-dev libcrypt-dev libxml2-dev libmicrohttpd-dev
  python3 python3-pykmip python3-psycopg2
)

kg_install_packages() {
  local missing=()
  for p in "${KG_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# kg_build DIR [meson options...]: configure once, then build.
kg_build() {
  local dir="$1"; shift
  if [ ! -f "$KG_ROOT/$dir/build.ninja" ]; then
    meson setup "$KG_ROOT/$dir" "$KG_ROOT" "$@" >/dev/null
  fi
  ninja -C "$KG_ROOT/$dir" >/dev/null
}
