"""Prompt templates that try to exhaust memory, generated: every way minijinja makes a value
larger (~ and + on strings, *, copying filters, lists grown in loops, namespaces, macros,
recursion), nested and driven by loops. One template per line, as CSV, on stdout.

    python3 templates.py COUNT SEED
"""
import csv
import random
import sys

SEEDS = ["'x' * 100000", "'ab' * 4000000", "range(10000) | list", "(range(1000) | list) * 200",
         "'y' ~ 'z'", "[1, 2, 3] * 30000", "'q' * 100000000", "{'k': 'v' * 100000}"]
GROWERS = ["{v} ~ {v}", "{v} + {v}", "[{v}, {v}]", "{v} | string | replace('x', 'xx')",
           "({v} | string) * 3", "{v} | join(',')", "{v} | string | center(2000000)", "{v} | tojson",
           "({v} | list) + ({v} | list)", "{v} | string | indent(8)", "{v} ~ ({v} | string | upper)",
           "{v} | string | wordwrap(3)", "[{v}] * 1000", "{v} | pprint"]


def template(rng):
    body = f"{{% set v0 = {rng.choice(SEEDS)} %}}"
    depth = rng.randint(1, 6)
    for level in range(1, depth + 1):
        prev = f"v{level - 1}"
        grow = rng.choice(GROWERS).replace("{v}", prev)
        kind = rng.randrange(5)
        if kind == 0:
            body += f"{{% set v{level} = {grow} %}}"
        elif kind == 1:
            body += (f"{{% macro m{level}(v) %}}{{{{ {grow.replace(prev, 'v')} }}}}{{% endmacro %}}"
                     f"{{% set v{level} = m{level}({prev}) %}}")
        elif kind == 2:
            body += (f"{{% set ns{level} = namespace(v={prev}) %}}{{% for i in range({rng.randint(2, 40)}) %}}"
                     f"{{% set ns{level}.v = ns{level}.v ~ ns{level}.v %}}{{% endfor %}}{{% set v{level} = ns{level}.v %}}")
        elif kind == 3:
            body += (f"{{% macro r{level}(n, v) %}}{{% if n > 0 %}}{{{{ r{level}(n - 1, v ~ v) }}}}"
                     f"{{% else %}}{{{{ v | length }}}}{{% endif %}}{{% endmacro %}}"
                     f"{{% set v{level} = r{level}({rng.randint(5, 60)}, {prev}) %}}")
        else:
            body += (f"{{% for i in range({rng.randint(2, 60)}) %}}{{% for j in range({rng.randint(2, 60)}) %}}"
                     f"{{{{ {grow} | length if i == j else '' }}}}{{% endfor %}}{{% endfor %}}{{% set v{level} = {prev} %}}")
    return body + f"{{{{ v{depth} | length }}}}"


def main():
    count, seed = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    out = csv.writer(sys.stdout)
    for _ in range(count):
        out.writerow([template(rng)])


if __name__ == "__main__":
    main()
