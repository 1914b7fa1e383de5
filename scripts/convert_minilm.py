#!/usr/bin/env python3
"""Convert sentence-transformers/all-MiniLM-L6-v2 (safetensors + tokenizer.json) to a GGUF
that llama.cpp loads as a BERT embedder with mean pooling.

Usage: convert_minilm.py MODEL_DIR OUT.gguf

Why a converter of our own: llama.cpp's convert_hf_to_gguf.py needs torch and transformers
(gigabytes); this needs only gguf, safetensors and numpy. It writes what that script writes for
BERT: the WordPiece vocabulary as the `bert` tokenizer with word-start pieces prefixed by U+2581
and `##` continuations stripped, [CLS] as BOS and [SEP] as separator, mean pooling, non-causal
attention. The pooler tensors are not used by llama.cpp and are skipped.
"""
import json
import sys
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import load_file

SKIP = ("embeddings.position_ids", "pooler.")


def phantom(token: str) -> str:
    if token.startswith("[") and token.endswith("]"):
        return token
    if token.startswith("##"):
        return token[2:]
    return "\u2581" + token


def write_vocab(writer: gguf.GGUFWriter, model_dir: Path, hp: dict) -> None:
    tok = json.loads((model_dir / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    assert len(tokens) == hp["vocab_size"], "vocabulary size mismatch"
    special = {a["content"] for a in tok.get("added_tokens", []) if a.get("special")}
    types = [
        gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens
    ]
    writer.add_token_type_count(hp.get("type_vocab_size", 1))
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list([phantom(t) for t in tokens])
    writer.add_token_types(types)
    writer.add_bos_token_id(vocab["[CLS]"])
    writer.add_sep_token_id(vocab["[SEP]"])
    writer.add_unk_token_id(vocab["[UNK]"])
    writer.add_pad_token_id(vocab["[PAD]"])
    writer.add_mask_token_id(vocab["[MASK]"])
    writer.add_add_bos_token(True)
    writer.add_add_sep_token(True)
    writer.add_add_eos_token(False)


def write_tensors(writer: gguf.GGUFWriter, model_dir: Path, n_layers: int) -> None:
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_layers)
    for name, data in sorted(load_file(str(model_dir / "model.safetensors")).items()):
        if name.startswith(SKIP):
            continue
        new_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if new_name is None:
            raise SystemExit(f"no GGUF name for tensor {name}")
        writer.add_tensor(new_name, data.astype(np.float32))


def main() -> None:
    model_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    hp = json.loads((model_dir / "config.json").read_text())
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"], "expected mean pooling"

    writer = gguf.GGUFWriter(str(out), "bert")
    writer.add_name("all-MiniLM-L6-v2")
    writer.add_context_length(hp["max_position_embeddings"])
    writer.add_embedding_length(hp["hidden_size"])
    writer.add_feed_forward_length(hp["intermediate_size"])
    writer.add_block_count(hp["num_hidden_layers"])
    writer.add_head_count(hp["num_attention_heads"])
    writer.add_layer_norm_eps(hp["layer_norm_eps"])
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType.MEAN)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    write_vocab(writer, model_dir, hp)
    write_tensors(writer, model_dir, hp["num_hidden_layers"])

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
