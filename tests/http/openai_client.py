"""OpenAI's official Python client against `st daemon --http` (TAP lines on stdout).

Usage: openai_client.py BASE_URL TOKEN EXPECTED_JSON
EXPECTED_JSON holds what SQL answered for the same requests: {"prompt", "max_tokens",
"text" (steadytext_generate), "embedding" (steadytext_embed of "prompt", 1024 floats)}.
"""
import json
import struct
import sys

import openai

base_url, token, expected_path = sys.argv[1:4]
expected = json.load(open(expected_path))
prompt, max_tokens = expected["prompt"], expected["max_tokens"]
n = 0
failed = False


def check(description, ok, detail=""):
    global n, failed
    n += 1
    print(("ok" if ok else "not ok") + f" {n} - {description}")
    if not ok:
        failed = True
        for line in str(detail).splitlines():
            print(f"# {line}")


client = openai.OpenAI(base_url=base_url, api_key=token, max_retries=0)
messages = [{"role": "user", "content": prompt}]

chat = client.chat.completions.create(model="default", messages=messages, max_tokens=max_tokens)
text = chat.choices[0].message.content
check("chat: the text equals steadytext_generate's", text == expected["text"],
      f"http: {text!r}\nsql:  {expected['text']!r}")
check("chat: usage counts the tokens", chat.usage.completion_tokens > 0
      and chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens,
      chat.usage)
check("chat: finish_reason is length or stop", chat.choices[0].finish_reason in ("length", "stop"),
      chat.choices[0].finish_reason)

pieces = []
finish = None
for chunk in client.chat.completions.create(model="default", messages=messages,
                                            max_tokens=max_tokens, stream=True):
    if chunk.choices:
        delta = chunk.choices[0].delta.content
        if delta:
            pieces.append(delta)
        finish = chunk.choices[0].finish_reason or finish
check("chat stream: several pieces that add up to the same text",
      len(pieces) > 1 and "".join(pieces) == expected["text"], pieces)
check("chat stream: ends with a finish_reason", finish in ("length", "stop"), finish)

completion = client.completions.create(model="default", prompt=prompt, max_tokens=max_tokens)
check("completions: the same text", completion.choices[0].text == expected["text"],
      completion.choices[0].text)

streamed = "".join(c.choices[0].text for c in client.completions.create(
    model="default", prompt=prompt, max_tokens=max_tokens, stream=True) if c.choices)
check("completions stream: the same text", streamed == expected["text"], streamed)

one = client.embeddings.create(model="default", input=prompt)
vector = one.data[0].embedding
check("embeddings: 1024 floats", len(vector) == 1024, len(vector))
# Compared as float32 bytes: SQL prints each real in its shortest form, which Python reads as
# the nearest double, not the float32 itself.
check("embeddings: the same float32 bytes as steadytext_embed (base64, as the client asks)",
      struct.pack("<1024f", *vector) == struct.pack("<1024f", *expected["embedding"]),
      max(abs(a - b) for a, b in zip(vector, expected["embedding"])))
batch = client.embeddings.create(model="default", input=["first text", prompt, "third"])
first = client.embeddings.create(model="default", input="first text").data[0].embedding
check("embeddings batch: one vector per input, in order",
      [d.index for d in batch.data] == [0, 1, 2] and batch.data[1].embedding == vector
      and batch.data[0].embedding == first and batch.data[2].embedding != first,
      [d.index for d in batch.data])
floats = client.embeddings.create(model="default", input=prompt, encoding_format="float")
check("embeddings: float and base64 encodings agree", floats.data[0].embedding == vector)

models = client.models.list()
ids = [m.id for m in models.data]
check("models: default, the registry and the loaded files",
      "default" in ids and len(ids) > 2 and any(i.endswith(".gguf") for i in ids), ids)

schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
structured = client.chat.completions.create(
    model="default", messages=[{"role": "user", "content": "Give a number as JSON"}],
    max_tokens=64, response_format={"type": "json_schema",
                                    "json_schema": {"name": "n", "schema": schema}})
try:
    value = json.loads(structured.choices[0].message.content)
    ok = isinstance(value.get("n"), int)
except ValueError as e:
    ok, value = False, e
check("response_format json_schema: the answer follows the schema", ok, value)

try:
    client.chat.completions.create(model="default", messages=messages, n=2)
    check("n=2 is refused with 400", False, "accepted")
except openai.BadRequestError as e:
    check("n=2 is refused with 400", e.status_code == 400 and e.body["param"] == "n", e.body)

try:
    client.chat.completions.create(model="no-such-model.gguf", messages=messages, max_tokens=4)
    check("an unknown model is a 404", False, "accepted")
except openai.NotFoundError as e:
    check("an unknown model is a 404", e.status_code == 404, e.body)

try:
    client.chat.completions.create(model="default", messages=messages, max_tokens=10**9)
    check("max_tokens over the limit is a 400", False, "accepted")
except openai.BadRequestError as e:
    check("max_tokens over the limit is a 400", "max_tokens_limit" in e.message, e.message)

wrong = openai.OpenAI(base_url=base_url, api_key="wrong", max_retries=0)
try:
    wrong.chat.completions.create(model="default", messages=messages, max_tokens=4)
    check("a wrong token is a 401", False, "accepted")
except openai.AuthenticationError as e:
    check("a wrong token is a 401", e.status_code == 401, e.body)

print(f"1..{n}")
sys.exit(1 if failed else 0)
