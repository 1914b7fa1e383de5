# TAP helpers for the shell suites (sourced): check and same print one test line each and set
# `failed`; the suite prints the plan ("1..$n") and exits with $failed at its end.
n=${n:-0}
failed=${failed:-0}

# check DESCRIPTION STATUS [DETAIL]: passes when STATUS is 0; DETAIL is printed on failure.
check() {
    n=$((n + 1))
    if [ "$2" -eq 0 ]; then
        echo "ok $n - $1"
    else
        echo "not ok $n - $1"
        [ -n "${3:-}" ] && printf '%s\n' "$3" | sed 's/^/# /'
        failed=1
    fi
}

# same DESCRIPTION GOT EXPECTED: passes when the two strings are equal.
same() {
    if [ "$2" = "$3" ]; then check "$1" 0; else check "$1" 1 "got: $2 | expected: $3"; fi
}

# Files copied into PostgreSQL's extension directory for a suite (earlier install scripts,
# stand-ins) and removed again: `place FILE` copies, `unplace` removes what was placed. A suite
# calls unplace from its cleanup too. Never replaces a file that is there already.
placed=()
EXT_DIR=${EXT_DIR:-$("${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}" --sharedir)/extension}
place() {
    local target
    target=$EXT_DIR/$(basename "$1")
    if [ -e "$target" ]; then echo "# $target exists already: not replaced" >&2; return 1; fi
    install -m 644 "$1" "$target" && placed+=("$target")
}
unplace() { for f in "${placed[@]}"; do rm -f "$f"; done; placed=(); }
