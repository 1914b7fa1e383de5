"""SteadyText's own Python daemon client against `st daemon`: generate, stream and embed must
equal what `st` prints in-process (also regex-constrained generation and rerank). Emits TAP. Usage: steadytext_client.py PORT ST_BINARY"""
import json
import os
import struct
import subprocess
import sys

from steadytext.daemon.client import DaemonClient

port, st = int(sys.argv[1]), sys.argv[2]
prompt = "Write a haiku about PostgreSQL"
results = []


def check(description, ok, detail=""):
    results.append(ok)
    print(f"{'ok' if ok else 'not ok'} {len(results)} - {description}")
    if not ok and detail:
        print("# " + detail.replace("\n", "\n# "))


def st_out(*args):
    env = dict(os.environ, STEADYTEXT_DISABLE_DAEMON="1")
    return subprocess.run([st, *args], check=True, capture_output=True, env=env).stdout


print("1..9")
client = DaemonClient(host="127.0.0.1", port=port, timeout_ms=60000)
check("the client connects (ping/pong)", client.connect())

expected = st_out("generate", prompt, "--max-new-tokens", "40", "--wait").decode().rstrip("\n")
# Stream first: afterwards the daemon's cache answers, and a cached answer is one piece.
pieces = [p if isinstance(p, str) else p["token"] for p in client.generate_iter(prompt, max_new_tokens=40)]
check("generate_iter streams several pieces", len(pieces) > 1, f"{len(pieces)} pieces")
check("the stream adds up to `st generate`", "".join(pieces).strip() == expected, repr("".join(pieces)))
got = client.generate(prompt, max_new_tokens=40)
check("generate (now from the daemon's cache) equals `st generate`", got == expected, f"daemon: {got!r}\nst: {expected!r}")

vector = client.embed("hello")
reference = json.loads(st_out("embed", "hello", "--format", "json"))["embedding"]
as_f32 = lambda v: [struct.unpack("<f", struct.pack("<f", x))[0] for x in v]
check("embed returns 1024 floats", len(vector) == 1024, str(len(vector)))
check("embed equals `st embed` bit for bit", as_f32(list(vector)) == as_f32(reference))

got = client.generate("A phone number", max_new_tokens=32, regex="[0-9]{3}-[0-9]{4}")
expected = st_out("generate", "A phone number", "--max-new-tokens", "32", "--regex", "[0-9]{3}-[0-9]{4}").decode().strip()
check("generate with regex= equals `st generate --regex`", got == expected, f"daemon: {got!r}\nst: {expected!r}")

docs = ["PostgreSQL is a database", "Bananas are yellow"]
ranked = client.rerank("What is PostgreSQL?", docs)
reference = json.loads(st_out("rerank", "What is PostgreSQL?", *docs, "--json"))["documents"]
check("rerank returns [document, score] pairs", all(len(r) == 2 for r in ranked), repr(ranked))
check("rerank equals `st rerank`", [(d, s) for d, s in ranked] == [(r["document"], r["score"]) for r in reference],
      f"daemon: {ranked!r}\nst: {reference!r}")
sys.exit(0 if all(results) else 1)
