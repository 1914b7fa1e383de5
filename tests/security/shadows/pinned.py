"""Every statement of an install or upgrade script runs with search_path pinned to pg_catalog.

Follows `SELECT pg_catalog.set_config('search_path', ...)` through the script: a statement may run
with another path only if it is one of the C function declarations pgrx writes between the SQL
files (they name types, which PostgreSQL looks up in pg_catalog first, and constant defaults). The
first statement of the script must pin. Prints each statement found unpinned (file, line, its
first words) and, last, how many statements it checked; exits 1 when it found any.

    python3 pinned.py SCRIPT.sql...
"""
import re
import sys

PIN = re.compile(r"^SELECT\s+pg_catalog\.set_config\('search_path',\s*'([^']*)',\s*true\)$", re.I | re.S)
C_FUNCTION = re.compile(r"^CREATE\s+(OR\s+REPLACE\s+)?FUNCTION\s.*\bLANGUAGE\s+c\b", re.I | re.S)


def statements(text):
    """(line, statement) for each statement, comments and dollar-quoted bodies kept inside."""
    i, start, out = 0, 0, []
    while i < len(text):
        if text.startswith("--", i):
            i = text.find("\n", i)
            i = len(text) if i < 0 else i
        elif text.startswith("/*", i):
            i = text.find("*/", i) + 2
        elif text[i] == "'":
            i = text.find("'", i + 1) + 1
            while i < len(text) and text[i] == "'":  # '' inside a literal
                i = text.find("'", i + 1) + 1
        elif text[i] == "$" and (m := re.match(r"\$[A-Za-z_]*\$", text[i:])):
            i = text.find(m.group(0), i + len(m.group(0))) + len(m.group(0))
        elif text[i] == ";":
            out.append((text.count("\n", 0, start) + 1, text[start:i]))
            i += 1
            start = i
        else:
            i += 1
    return out


def code(statement):
    """The statement without its comments."""
    return re.sub(r"/\*.*?\*/", " ", re.sub(r"--[^\n]*", " ", statement), flags=re.S).strip()


def main(paths):
    bad, checked = [], 0
    for path in paths:
        pinned = False
        for line, statement in statements(open(path).read()):
            sql = code(statement)
            if not sql:
                continue
            checked += 1
            if m := PIN.match(sql):
                pinned = m.group(1).replace(" ", "") == "pg_catalog,pg_temp"
            elif not pinned and not C_FUNCTION.match(sql):
                bad.append(f"{path}:{line}: {' '.join(sql.split())[:70]}")
    for b in bad:
        print(b)
    print(f"{checked} statements checked")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
