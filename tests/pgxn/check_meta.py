"""Checks META.json against PGXN Meta Spec v1.0.0 (https://pgxn.org/spec/): the required keys,
their types and formats, and that it agrees with the build (Cargo's version).

PGXN's own validator (the Perl PGXN::Meta::Validator) is not in Debian or PyPI, so the spec's
rules are written out here. Prints one TAP line per rule group; exit status 1 on any failure."""

import json
import os
import re
import sys

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$")
LICENSES = {
    "agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd", "freebsd", "gfdl_1_2",
    "gfdl_1_3", "gpl_1", "gpl_2", "gpl_3", "lgpl_2_1", "lgpl_3_0", "mit", "mozilla_1_0",
    "mozilla_1_1", "openssl", "perl_5", "postgresql", "qpl_1_0", "ssleay", "sun", "zlib",
    "open_source", "restricted", "unrestricted", "unknown",
}
PHASES = {"configure", "build", "test", "runtime", "develop"}
RELATIONS = {"requires", "recommends", "suggests", "conflicts"}
STATUSES = {"stable", "testing", "unstable"}


def version_spec(value):
    # A prerequisite's version: 0, a semantic version, or comparisons joined by commas.
    if value == 0 or value == "0":
        return True
    parts = [p.strip() for p in str(value).split(",")]
    return all(re.match(r"^(==|!=|>=|<=|>|<)?\s*", p) and
               SEMVER.match(re.sub(r"^(==|!=|>=|<=|>|<)\s*", "", p)) for p in parts)


def main(meta_path, cargo_version):
    meta = json.load(open(meta_path))
    checks = []

    def check(description, ok, detail=""):
        checks.append((description, bool(ok), detail))

    required = ["name", "abstract", "maintainer", "license", "provides", "version", "meta-spec"]
    check("required keys present", all(k in meta for k in required),
          [k for k in required if k not in meta])
    check("meta-spec version is 1.0.0", meta.get("meta-spec", {}).get("version") == "1.0.0")
    check("name is a valid distribution name",
          isinstance(meta.get("name"), str) and re.match(r"^[^/\\\s\x00-\x1f]{2,}$", meta["name"]))
    check("version is a semantic version", SEMVER.match(str(meta.get("version", ""))))
    check("abstract is a one-line string",
          isinstance(meta.get("abstract"), str) and "\n" not in meta["abstract"])
    maintainer = meta.get("maintainer")
    check("maintainer is a string or a list of strings",
          isinstance(maintainer, str) or
          (isinstance(maintainer, list) and maintainer and all(isinstance(m, str) for m in maintainer)))
    license_ = meta.get("license")
    names = license_ if isinstance(license_, list) else [license_] if isinstance(license_, str) else []
    check("license is one of the spec's names",
          (names and all(n in LICENSES for n in names)) or isinstance(license_, dict), license_)
    provides = meta.get("provides", {})
    check("provides lists extensions, each with file and semantic version",
          isinstance(provides, dict) and provides and
          all(isinstance(p, dict) and isinstance(p.get("file"), str) and SEMVER.match(str(p.get("version", "")))
              for p in provides.values()), provides)
    prereqs = meta.get("prereqs", {})
    check("prereqs use the spec's phases, relationships and version formats",
          all(phase in PHASES and all(rel in RELATIONS and all(version_spec(v) for v in deps.values())
                                      for rel, deps in rels.items())
              for phase, rels in prereqs.items()), prereqs)
    check("release_status is stable, testing or unstable",
          meta.get("release_status", "stable") in STATUSES)
    check("no_index holds file and directory lists",
          all(k in ("file", "directory") and isinstance(v, list) for k, v in meta.get("no_index", {}).items()))
    check("tags are strings of at most 255 characters",
          all(isinstance(t, str) and 0 < len(t) <= 255 for t in meta.get("tags", [])))
    check("version and the extension's version equal Cargo's (%s)" % cargo_version,
          meta.get("version") == cargo_version and
          provides.get("pg_steadytext", {}).get("version") == cargo_version,
          (meta.get("version"), cargo_version))
    check("the extension's file exists", all(os.path.isfile(p.get("file", "")) for p in provides.values()))

    for i, (description, ok, detail) in enumerate(checks, 1):
        print(("ok" if ok else "not ok"), i, "-", "META.json:", description)
        if not ok and detail != "":
            print("#", detail)
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
