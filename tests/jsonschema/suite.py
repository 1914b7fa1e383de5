"""The JSON Schema Test Suite through steadytext_generate_json (TAP).

    suite.py load  SUITE_DIR            prints SQL that fills table suite(id, file, description, schema)
    suite.py check SUITE_DIR RESULTS    validates results (JSON lines: id, output, error), prints TAP

A group is satisfiable when one of its tests is valid. Each generated output is validated with
the group's schema (Draft 4); a refusal must name a keyword of the schema.
"""
import glob
import json
import os
import sys


def groups(suite_dir):
    files = sorted(glob.glob(os.path.join(suite_dir, "tests", "draft4", "*.json")))
    n = 0
    for path in files:
        name = os.path.basename(path)
        if name == "refRemote.json":  # needs a network server, as the issue says
            continue
        for group in json.load(open(path)):
            n += 1
            yield n, name, group


def keywords(schema, found=None):
    found = set() if found is None else found
    if isinstance(schema, dict):
        for key, value in schema.items():
            found.add(key)
            keywords(value, found)
    elif isinstance(schema, list):
        for item in schema:
            keywords(item, found)
    return found


def load(suite_dir):
    print("CREATE TABLE suite (id int PRIMARY KEY, file text, description text, schema jsonb);")
    for n, name, group in groups(suite_dir):
        schema = json.dumps(group["schema"])
        description = group["description"].replace("'", "''")
        print(f"INSERT INTO suite VALUES ({n}, '{name}', '{description}', $schema${schema}$schema$);")


def check(suite_dir, results_path):
    from jsonschema import Draft4Validator

    results = {}
    for line in open(results_path):
        if line.strip():
            row = json.loads(line)
            results[row["id"]] = row
    validates, refused, invalid, unnamed, unsatisfiable = [], [], [], [], []
    for n, name, group in groups(suite_dir):
        label = f"{name}: {group['description']}"
        if not any(t["valid"] for t in group["tests"]):
            unsatisfiable.append(label)
            continue
        row = results.get(n, {})
        if row.get("error"):
            refused.append((label, row["error"]))
            if not any(k in row["error"] for k in keywords(group["schema"])):
                unnamed.append((label, row["error"]))
            continue
        try:
            value = json.loads(row.get("output") or "")
        except ValueError as e:
            invalid.append((label, f"not JSON: {e}: {row.get('output')!r}"))
            continue
        errors = sorted(Draft4Validator(group["schema"]).iter_errors(value), key=str)
        if errors:
            invalid.append((label, f"{errors[0].message} (output {row['output']!r})"))
        else:
            validates.append(label)
    satisfiable = len(validates) + len(refused) + len(invalid)
    share = len(validates) / satisfiable if satisfiable else 0
    print(f"# {satisfiable} satisfiable groups: {len(validates)} validate, {len(refused)} refused, "
          f"{len(invalid)} do not validate; {len(unsatisfiable)} unsatisfiable")
    for label, error in refused:
        print(f"# refused: {label}: {error}")
    tests = [
        (f"at least 90 % of the satisfiable schemas give output that validates ({share:.1%})", share >= 0.9, ""),
        ("no output fails validation", not invalid, "; ".join(f"{l}: {e}" for l, e in invalid)),
        ("every refusal names the unsupported keyword", not unnamed, "; ".join(f"{l}: {e}" for l, e in unnamed)),
    ]
    print(f"1..{len(tests)}")
    failed = 0
    for i, (description, ok, detail) in enumerate(tests, 1):
        print(f"{'ok' if ok else 'not ok'} {i} - {description}")
        if not ok:
            failed = 1
            print(f"# {detail[:2000]}")
    return failed


if __name__ == "__main__":
    if sys.argv[1] == "load":
        load(sys.argv[2])
    else:
        sys.exit(check(sys.argv[2], sys.argv[3]))
