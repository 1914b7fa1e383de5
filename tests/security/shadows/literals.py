"""Every literal argument of a call to one of the extension's own functions carries a cast.

The SQL names the extension's functions @extschema@.name(...). A call resolves among every
function of that name in the schema, including any a role with CREATE on it made, and a literal
without a cast (unknown, or an int where the parameter is float8) is not an exact match: a role's
overload taking exactly that type would win. Prints the offending calls (file:line) and, last, how
many calls it checked; exits 1 when it found any.

    python3 literals.py FILE.sql...
"""
import re
import sys

LITERAL = re.compile(r"""^\s*('(?:[^']|'')*'|-?\d+(?:\.\d+)?|true|false|null|array\s*\[)""", re.I)
CAST = re.compile(r"""::\s*[\w."]+(\s*\(\s*\d+\s*\))?(\s*\[\s*\])*\s*$""")


def arguments(text, start):
    """The top-level arguments of the call whose '(' ends at start, and where they end."""
    depth, quoted, current, parts, i = 1, False, "", [], start
    while i < len(text) and depth:
        c = text[i]
        if c == "'":
            quoted = not quoted
        elif not quoted and c in "([":
            depth += 1
        elif not quoted and c in ")]":
            depth -= 1
            if depth == 0:
                break
        if c == "," and depth == 1 and not quoted:
            parts.append(current)
            current = ""
        else:
            current += c
        i += 1
    if current.strip():
        parts.append(current)
    return parts


def main(paths):
    bad, checked = [], 0
    for path in paths:
        text = open(path).read()
        for m in re.finditer(r"@extschema@\.(\w+)\s*\(", text):
            if re.search(r"(CREATE|ALTER|COMMENT ON|GRANT|REVOKE|ON FUNCTION|FUNCTION)\s*(OR REPLACE\s+)?(FUNCTION\s+)?$",
                         text[max(0, m.start() - 40):m.start()], re.I):
                continue  # a declaration or a grant, not a call
            if m.group(1) == "vector":
                continue  # pgvector's type with its dimension, vector(1024)
            checked += 1
            for arg in arguments(text, m.end()):
                if LITERAL.match(arg) and not CAST.search(arg.strip()):
                    line = text.count("\n", 0, m.start()) + 1
                    bad.append(f"{path}:{line}: {m.group(1)}(... {arg.strip()[:50]} ...)")
    for b in bad:
        print(b)
    print(f"{checked} calls checked")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
