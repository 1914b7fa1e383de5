"""Import shim for `llama_cpp`, for SteadyText's daemon client only.

The steadytext package imports llama-cpp-python at import time although its DaemonClient never
uses it; this test talks to `st daemon` and must not need a second llama.cpp. Installed as
llama_cpp/__init__.py on the test's PYTHONPATH.
"""


class Llama:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("llama_cpp shim: in-process models are not available in this test")


class LlamaGrammar:
    pass
