#!/usr/bin/env bash
# The headless browser the console's tests drive: Debian's chromium (Playwright connects to it;
# it never downloads a browser of its own).
#
#   scripts/browser.sh install   install Debian's chromium if it is missing (root)
#   scripts/browser.sh path      print the browser's path; exit 1 if it is not installed
#
# Environment (defaults in brackets):
#   CHROMIUM_PATH   the browser the tests launch [/usr/bin/chromium]
set -euo pipefail

readonly PACKAGES=(chromium)
CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}

log() { printf 'browser.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

cmd_install() {
    if [[ -x $CHROMIUM ]]; then
        log "chromium present ($CHROMIUM)"
        return 0
    fi
    if ((EUID != 0)); then
        log "missing: $CHROMIUM (package chromium)"
        log "install it as root with:"
        log "    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${PACKAGES[*]}"
        log "(or run: sudo $0 install)"
        exit 1
    fi
    log "installing ${PACKAGES[*]}"
    export DEBIAN_FRONTEND=noninteractive
    local pkg need_update=
    for pkg in "${PACKAGES[@]}"; do
        apt-cache show "$pkg" >/dev/null 2>&1 || need_update=1
    done
    [[ -z $need_update ]] || apt-get update
    # Recommends would pull a desktop's worth of fonts and themes; headless needs none of it.
    if ! apt-get install -y --no-install-recommends "${PACKAGES[@]}"; then
        [[ -z $need_update ]] || die "apt-get install failed"
        log "apt-get install failed, retrying after apt-get update (stale package lists?)"
        apt-get update
        apt-get install -y --no-install-recommends "${PACKAGES[@]}"
    fi
    [[ -x $CHROMIUM ]] || die "still missing after install: $CHROMIUM"
    log "installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
}

cmd_path() {
    [[ -x $CHROMIUM ]] || die "$CHROMIUM is not installed (run: $0 install, as root)"
    echo "$CHROMIUM"
}

main() {
    case ${1:-} in
    install) cmd_install ;;
    path) cmd_path ;;
    -h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2 ;;
    *)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
        exit 2
        ;;
    esac
}

main "$@"
