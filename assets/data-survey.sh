#!/usr/bin/env bash
# Surveys the Redis data already on this node's disk, before our redis.conf is written or Redis
# restarted: when a cluster is re-created no sentinel answers, and the node to be master must be
# the one with the newest data. Runs after lib/common.sh (prepended). Read-only, needs no Redis.
#
# dump.rdb holds the replication offset of the stream a node had applied when it was written
# (a SHUTDOWN with save points writes it, master or replica): offsets are comparable between
# nodes. A running Redis restarted from its AOF cannot tell (offset 0, new replication ID).
#
# Environment: DATA_DIR (default /var/lib/redis, or valkey's): Redis's `dir`, dump.rdb and
# appendonlydir/; SERVER.
# Prints one JSON line: {"hasData","keys","replId","replOffset","savedAt","aofBytes","newestWrite"};
# keys … savedAt come from dump.rdb (redis-check-rdb): null without one or redis-check-rdb, or
# when it is damaged or older than the AOF (then it does not describe the data).
set -euo pipefail
# shellcheck disable=SC2034 # read by info/warn/fatal in lib/common.sh
log_tag=data-survey
dir=${DATA_DIR:-$SERVER_DATA}
check_tool=$SERVER-check-rdb
dump=$dir/dump.rdb
aof_dir=$dir/appendonlydir

# Modification time in nanoseconds (an integer bash can compare), or nothing for a missing file.
mtime_ns() { [ -e "$1" ] && stat -c %.9Y "$1" | tr -d .; }

# redis-check-rdb's report on an RDB file (it only reads it), or nothing when it cannot.
check_rdb() { command -v "$check_tool" >/dev/null && "$check_tool" "$1" 2>/dev/null; }

# The value of an RDB auxiliary field in a check_rdb report, or nothing.
aux() { sed -n "s/^\[offset [0-9]*\] AUX FIELD $1 = '\([^']*\)'\$/\1/p" <<<"$2" | head -1; }

# "N" keys in a check_rdb report, or nothing.
keys_of() { sed -n 's/^\[info\] \([0-9]*\) keys read$/\1/p' <<<"$1" | head -1; }

json_or_null() { if [ -n "$1" ]; then printf '%s' "$1"; else printf null; fi; }

# Sets keys, repl_id, repl_offset and saved_at from dump.rdb, or leaves them empty when it
# cannot tell; sets dump_unread when it cannot read the dump at all (then it counts as data).
# Usage: read_dump <newest AOF mtime in ns, 0 for none>
read_dump() {
    local report ctime
    dump_unread=true
    command -v "$check_tool" >/dev/null || { warn "$check_tool is missing (package $SERVER-tools): $dump counted as data, offset unknown"; return 0; }
    report=$(check_rdb "$dump") || { warn "$check_tool finds $dump damaged: counted as data, offset unknown"; return 0; }
    dump_unread=false
    ctime=$(aux ctime "$report")
    # The AOF written after the snapshot began (a crash after a BGSAVE, or a replica's copy of
    # its last full sync): the dump does not describe the data, the AOF does. On SHUTDOWN
    # Redis flushes the AOF first, then writes the dump.
    if (($1 > $(mtime_ns "$dump"))) || { [[ $ctime =~ ^[0-9]+$ ]] && (($1 / 1000000000 > ctime)); }; then
        warn "$dump is older than the AOF: the data's replication offset is unknown"
        return 0
    fi
    keys=$(keys_of "$report")
    saved_at=$ctime
    repl_id=$(aux repl-id "$report")
    repl_offset=$(aux repl-offset "$report")
    # A master that never had a replica writes none (no backlog).
    [[ $repl_id =~ ^[0-9a-f]{40}$ && $repl_offset =~ ^[0-9]+$ ]] || repl_id="" repl_offset=""
    [[ $saved_at =~ ^[0-9]+$ ]] || saved_at=""
}

main() {
    local aof_bytes=0 base_data=false newest_aof=0 newest=0 newest_s="" has_data=false f t report
    keys="" repl_id="" repl_offset="" saved_at="" dump_unread=false
    if [ -e "$dir" ] && ! { [ -r "$dir" ] && [ -x "$dir" ]; }; then fatal "cannot read $dir: run as root"; fi

    shopt -s nullglob # an absent or empty appendonlydir: no files
    for f in "$aof_dir"/*; do
        [ -f "$f" ] || continue
        t=$(mtime_ns "$f")
        if ((t > newest)); then newest=$t; fi
        # temp-*: a rewrite that did not finish, which Redis discards when it starts.
        [[ $(basename "$f") != temp-* ]] || continue
        if ((t > newest_aof)); then newest_aof=$t; fi
        case $f in
        *.incr.aof) aof_bytes=$((aof_bytes + $(stat -c %s "$f"))) ;;
        *.base.aof) if [ -s "$f" ]; then base_data=true; fi ;;
        *.base.rdb)
            # An empty dataset's base is a header of ~90 bytes: only its key count tells.
            if ! report=$(check_rdb "$f"); then
                warn "cannot check $f (redis-check-rdb missing or failing): counted as data"
                base_data=true
            elif [ "$(keys_of "$report")" != 0 ]; then
                base_data=true
            fi
            ;;
        esac
    done
    if [ -f "$dump" ]; then
        t=$(mtime_ns "$dump")
        if ((t > newest)); then newest=$t; fi
        read_dump "$newest_aof"
    fi

    ((newest == 0)) || newest_s=$((newest / 1000000000))
    if [ "${keys:-0}" -gt 0 ] || [ "$aof_bytes" -gt 0 ] || [ "$base_data" = true ] || [ "$dump_unread" = true ]; then
        has_data=true
    fi
    info "has data: $has_data, keys: ${keys:-unknown}, repl offset: ${repl_offset:-unknown}, AOF: $aof_bytes bytes"
    printf '{"hasData":%s,"keys":%s,"replId":%s,"replOffset":%s,"savedAt":%s,"aofBytes":%d,"newestWrite":%s}\n' \
        "$has_data" "$(json_or_null "$keys")" "$(json_or_null "${repl_id:+\"$repl_id\"}")" "$(json_or_null "$repl_offset")" \
        "$(json_or_null "$saved_at")" "$aof_bytes" "$(json_or_null "$newest_s")"
}

main "$@"
