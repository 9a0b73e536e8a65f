#!/usr/bin/env bash
# Rotates the deployer's SSH key on one server. Runs after lib/common.sh (prepended), logged in
# with the key being retired while there is one (README "Rotating credentials").
#   - AUTHORIZE (the public key of redis-ha:sshPrivateKey) is added to SSH_USER's
#     authorized_keys when missing;
#   - RETIRE (the public key of redis-ha:previousSshPrivateKey, while it is set) stays authorised
#     for now and is remembered in /var/lib/redis-ha/ssh-keys.retiring;
#   - once RETIRE is empty (the old key left the config), every remembered key is taken off
#     authorised_keys. A key is matched by its type and base64 text, whatever its options or comment.
# Environment: SSH_USER, AUTHORIZE ("type base64"), RETIRE ("type base64" or empty).
# Prints one JSON line.
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=ssh-keys
retiring=/var/lib/redis-ha/ssh-keys.retiring

# The "type base64" of an authorized_keys line (options and comment left out), or nothing.
key_of() { grep -oE '(ssh|ecdsa-sha2|sk-ssh|sk-ecdsa-sha2)-[^ ]+ [A-Za-z0-9+/=]+' <<<"$1" | head -1 || true; }

main() {
    local home dir file added=false removed=0 line key kept
    require_root
    [ -n "${AUTHORIZE:-}" ] || fatal "AUTHORIZE is empty"
    home=$(getent passwd "$SSH_USER" | cut -d: -f6)
    [ -n "$home" ] || fatal "no user $SSH_USER on this server"
    dir=$home/.ssh
    file=$dir/authorized_keys
    install -d -m 0700 -o "$SSH_USER" -g "$(id -gn "$SSH_USER")" "$dir"
    [ -f "$file" ] || install -m 0600 -o "$SSH_USER" -g "$(id -gn "$SSH_USER")" /dev/null "$file"
    if ! grep -qF "$AUTHORIZE" "$file"; then
        printf '%s redis-ha\n' "$AUTHORIZE" >>"$file"
        added=true
        info "authorised the new key for $SSH_USER"
    fi
    install -d -m 0755 /var/lib/redis-ha
    if [ -n "${RETIRE:-}" ]; then
        grep -qxF "$RETIRE" "$retiring" 2>/dev/null || echo "$RETIRE" >>"$retiring"
    elif [ -s "$retiring" ]; then
        kept=$(stage_file "$file" </dev/null)
        while IFS= read -r line; do
            key=$(key_of "$line")
            if [ -n "$key" ] && [ "$key" != "$AUTHORIZE" ] && grep -qxF "$key" "$retiring"; then
                removed=$((removed + 1))
            else
                printf '%s\n' "$line" >>"$kept"
            fi
        done <"$file"
        commit_file "$kept" "$file" "$SSH_USER:$(id -gn "$SSH_USER")" 0600
        rm -f "$retiring"
        info "took $removed retired key(s) off $SSH_USER's authorized_keys"
    fi
    printf '{"added":%s,"removed":%d,"retiring":%d}\n' "$added" "$removed" "$( [ -f "$retiring" ] && wc -l <"$retiring" || echo 0)"
}

main "$@"
