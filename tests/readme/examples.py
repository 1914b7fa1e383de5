"""Every SQL and shell example of the README, as a new user would run them (TAP).

    examples.py README DATABASE_DSN WORKDIR [OPTIONS_FILE]

OPTIONS_FILE lists the `st` flags (from every command's --help) and the steadytext.* settings,
one per line; the README must mention each.

Fenced blocks tagged `sql` run through psql in one database, in order (later examples use the
tables earlier ones create); blocks tagged `sh` run with bash in WORKDIR. Fences may be indented
(a block inside a list item); the block is dedented. A block directly preceded by
`<!-- example: not run (reason) -->` is only illustrative and is skipped with its reason. A block
fails on an error, and on a WARNING unless it is marked `<!-- example: warns (reason) -->`.
"""
import os
import re
import subprocess
import sys

MARK = re.compile(r"<!--\s*example:\s*not run\s*\((.+?)\)\s*-->")
WARNS = re.compile(r"<!--\s*example:\s*warns\s*\((.+?)\)\s*-->")


def blocks(path):
    lines = open(path).read().split("\n")
    i = 0
    while i < len(lines):
        fence = re.match(r"^(\s*)```(\w+)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        indent, lang, start = fence.group(1), fence.group(2), i + 1
        j = start
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        body = [l[len(indent):] if l.startswith(indent) else l for l in lines[start:j]]
        previous = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        skip, warns = MARK.search(previous), WARNS.search(previous)
        yield lang, start, "\n".join(body), skip.group(1) if skip else None, bool(warns)
        i = j + 1


def run(lang, code, dsn, workdir):
    if lang == "sql":
        command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", dsn]
    else:
        command = ["bash", "-euo", "pipefail"]
    return subprocess.run(command, input=code, text=True, capture_output=True, cwd=workdir, timeout=600)


def main(readme, dsn, workdir, options_file=None):
    todo = [b for b in blocks(readme) if b[0] in ("sql", "sh")]
    options = [o.strip() for o in open(options_file)] if options_file else []
    options = [o for o in options if o]
    print(f"1..{len(todo) + (1 if options else 0)}")
    failed = skipped = 0
    for n, (lang, line, code, skip, warns) in enumerate(todo, 1):
        title = f"README line {line} ({lang})"
        if skip:
            skipped += 1
            print(f"ok {n} - {title} # SKIP {skip}")
            continue
        result = run(lang, code, dsn, workdir)
        warned = "WARNING:" in result.stderr and not warns
        if result.returncode == 0 and not warned:
            print(f"ok {n} - {title}")
        else:
            failed += 1
            print(f"not ok {n} - {title}")
            for out in (result.stdout[-1500:], result.stderr[-1500:]):
                for l in out.strip().splitlines():
                    print(f"# {l}")
    print(f"# {len(todo) - skipped} examples run, {skipped} marked as not run")
    if options:
        text = open(readme).read()
        missing = [o for o in options if o not in text]
        n = len(todo) + 1
        if missing:
            failed += 1
            print(f"not ok {n} - the README documents every st flag and steadytext.* setting")
            print(f"# missing: {', '.join(missing)}")
        else:
            print(f"ok {n} - the README documents every st flag and steadytext.* setting ({len(options)})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
