#!/usr/bin/env bash
# Adds the apt repository of redis.packageSource (type apt) to this node, before the packages
# step installs from it. Runs after lib/common.sh (prepended).
#
#   /etc/apt/keyrings/redis-ha.asc            the repository's signing key, trusted for this
#                                             repository only (Signed-By), not for all of apt;
#   /etc/apt/sources.list.d/redis-ha.sources  the repository (deb822);
#   /etc/apt/preferences.d/redis-ha           a pin: the server's packages come from it even
#                                             where Debian's archive has a higher version.
# Then an index update, which fails here with apt's reason (a wrong key, a suite or component
# the repository does not have) before anything is installed, and puts the files back as they
# were. Nothing is fetched when the files are as they were.
# Environment: REPO_URL, REPO_SUITE, REPO_COMPONENT, REPO_KEY (the armored public key; not
# secret), PACKAGES (the server's). Prints one JSON line: whether it changed, the versions of
# the server package the repository offers, and the one apt would install.
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=apt-source
key=/etc/apt/keyrings/redis-ha.asc
sources=/etc/apt/sources.list.d/redis-ha.sources
pin=/etc/apt/preferences.d/redis-ha

# A repository apt cannot use would break every later index update on this server, and a step
# that failed is not in Pulumi's state, so nothing would take it off: on failure the files go
# back to what they were before this run.
saved=""
keep_previous() {
    local f
    saved=$(mktemp -d)
    for f in "$key" "$sources" "$pin"; do [ ! -f "$f" ] || cp -p "$f" "$saved/$(basename "$f")"; done
    trap put_back_previous EXIT
}
put_back_previous() {
    local f
    for f in "$key" "$sources" "$pin"; do
        if [ -f "$saved/$(basename "$f")" ]; then cp -p "$saved/$(basename "$f")" "$f"; else rm -f "$f"; fi
    done
    rm -rf "$saved"
    warn "the repository's files are back as they were before this run"
}

main() {
    local changed origin first offered candidate
    require_root
    command -v apt-get >/dev/null || fatal "needs a Debian-based server (apt-get)"
    origin=${REPO_URL#*://}
    origin=${origin%%/*}
    origin=${origin%%:*}
    install -d -m 0755 "$(dirname "$key")"
    keep_previous
    changed=$(printf '%s\n' "$REPO_KEY" | install_if_changed "$key" root:root 0644)
    changed+=$(install_if_changed "$sources" root:root 0644 <<SOURCES
# Managed by redis-ha (Pulumi): redis.packageSource.
Types: deb
URIs: $REPO_URL
Suites: $REPO_SUITE
Components: $REPO_COMPONENT
Signed-By: $key
SOURCES
    )
    changed+=$(install_if_changed "$pin" root:root 0644 <<PIN
# Managed by redis-ha (Pulumi): the server's packages from redis.packageSource.
Package: $PACKAGES
Pin: origin "$origin"
Pin-Priority: 1001
PIN
    )
    if [ -n "$changed" ]; then
        info "repository $REPO_URL $REPO_SUITE $REPO_COMPONENT added: updating the index"
        apt_update
    fi
    first=${PACKAGES%% *}
    # The versions this repository offers of the server (apt-cache madison names each one's source).
    offered=$(apt-cache madison "$first" 2>/dev/null | grep -F "${REPO_URL%/}" | awk -F' [|] ' '{print $2}' | paste -sd' ')
    if [ -z "$offered" ]; then
        fatal "$REPO_URL ($REPO_SUITE $REPO_COMPONENT) offers no $first for this server: check redis.packageSource (apt-cache policy $first)"
    fi
    trap - EXIT
    rm -rf "$saved"
    candidate=$(apt-cache policy "$first" 2>/dev/null | sed -n 's/^ *Candidate: //p')
    printf '{"changed":%s,"offered":"%s","candidate":"%s"}\n' "$([ -n "$changed" ] && echo true || echo false)" "$offered" "$candidate"
}

main "$@"
