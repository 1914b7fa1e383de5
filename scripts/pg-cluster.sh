#!/usr/bin/env bash
# A throw-away PostgreSQL 15 cluster run by the postgres user (PostgreSQL refuses root).
#
#   scripts/pg-cluster.sh start DIR PORT   initdb (trust auth, socket in DIR) and start
#   scripts/pg-cluster.sh stop DIR         stop it
#
# The cluster finds the test models through steadytext.* settings in its postgresql.conf.
set -euo pipefail
BIN=/usr/lib/postgresql/15/bin
MODELS=${STEADYTEXT_TEST_MODELS:-/var/cache/steadytext/test-models}
cmd=$1 dir=$2

as_postgres() { runuser -u postgres -- "$@"; }

case "$cmd" in
start)
    port=$3
    if [ ! -f "$dir/PG_VERSION" ]; then
        mkdir -p "$dir"
        chown postgres: "$dir"
        as_postgres "$BIN/initdb" -D "$dir" --auth=trust -U postgres >/dev/null
        cat >> "$dir/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$dir'
steadytext.generation_model = '$MODELS/smollm2-135m-instruct-q4_1.gguf'
steadytext.embedding_model = '$MODELS/all-minilm-l6-v2-f32.gguf'
${PG_EXTRA_CONF:-}
CONF
    fi
    # No Rust backtraces in error details: they are for developers, not SQL clients.
    as_postgres env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w start >/dev/null
    ;;
stop)
    [ -f "$dir/postmaster.pid" ] && as_postgres "$BIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
    ;;
*)
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
