#!/usr/bin/env bash
# A throw-away PostgreSQL 15 cluster run by the postgres user (PostgreSQL refuses root).
#
#   scripts/pg-cluster.sh start DIR PORT   initdb (trust auth, socket in DIR) and start
#   scripts/pg-cluster.sh stop DIR         stop it
#
# The cluster finds the test models through steadytext.* settings in its postgresql.conf. Its
# st daemon (started on demand by the first call, or by the supervisor when preloaded) listens on
# the cluster's private socket, DIR/pg_steadytext/daemon.sock, and keeps its cache in DIR/.cache,
# so clusters never share a daemon; `stop` stops it too.
set -euo pipefail
BIN=/usr/lib/postgresql/15/bin
MODELS=${STEADYTEXT_TEST_MODELS:-/var/cache/steadytext/test-models}
# The st the server runs (STEADYTEXT_ST: the package test runs the package's).
ST=${STEADYTEXT_ST:-$(command -v st || echo /usr/local/bin/st)}
cmd=$1 dir=$2

# The server's environment: postgres's own HOME, a cache of its own, no Rust backtraces in error
# details (they are for developers, not SQL clients).
as_postgres() {
    runuser -u postgres -- env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE \
        HOME="$(getent passwd postgres | cut -d: -f6)" XDG_CACHE_HOME="$dir/.cache" "$@"
}

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
steadytext.reranking_model = '$MODELS/smollm2-135m-instruct-q4_1.gguf'
steadytext.st_path = '$ST'
${PG_EXTRA_CONF:-}
CONF
    fi
    as_postgres "$BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w start >/dev/null
    ;;
stop)
    if [ -x "$ST" ] && [ -S "$dir/pg_steadytext/daemon.sock" ]; then
        as_postgres "$ST" daemon stop --endpoint "ipc://$dir/pg_steadytext/daemon.sock" >/dev/null 2>&1 || true
    fi
    if [ -f "$dir/postmaster.pid" ]; then
        as_postgres "$BIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
    fi
    ;;
*)
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
