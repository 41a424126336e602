#!/usr/bin/env python3
"""Writes reference fixtures from llama.cpp (through llama-cpp-python) for the SmolLM2 GGUF.

llama.cpp is the reference implementation of the GGUF format and its llama architecture;
these fixtures let pith's tests compare its own tokenizer and forward pass against it.
llama-cpp-python is not a dependency of pith; it is only needed to regenerate the files.

Outputs (compact JSON in core/tests/fixtures/):
  - smollm2_llamacpp_tokens.json: the ids llama.cpp gives for every string in
    make-fixtures.py's TOKENIZER_TEXTS, tokenized with add_bos=False, special=True
    (special tokens such as <|im_start|> in the text are parsed as special tokens).
  - smollm2_llamacpp_logits.json: for each of PROMPTS, the prompt's tokens and, for every
    position, the top 5 next tokens as [id, log-softmax log-probability] (best first,
    so top[0] is the argmax) plus "logit", the raw logit of the top-1 token.
  - smollm2_llamacpp_greedy.json: for each of PROMPTS, exactly GREEDY_TOKENS tokens of greedy
    generation (argmax of the logits, no repetition penalty, no stopping at end-of-generation
    tokens; "eog_positions" lists the indexes in "generated" that are end-of-generation tokens).

Run: scripts/reference-env (creates .venv, llama-cpp-python built from source), then
     .venv/bin/python scripts/make-llama-fixtures.py [tokens] [logits] [greedy]
With no arguments it writes all three. Uses 2 CPU threads. llama.cpp's CPU results depend
on the instruction set it was built for, not only on its version: the committed fixtures
come from a build for AVX2 (the AMD EPYC they were written on), and a native build on an
AVX-512 machine writes log-probabilities up to 0.76 apart and greedy continuations that
part after 7 and 11 tokens (docs/correctness.md). Tests compare with tolerances that
cover both; to reproduce the committed files exactly on an AVX-512 machine, build
llama-cpp-python with CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON
-DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF".
"""
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
MODELS = Path(os.environ.get("PITH_MODELS", ROOT / "models"))
OUT = ROOT / "core" / "tests" / "fixtures"
GGUF_PATH = MODELS / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
N_THREADS = 2
N_CTX = 2048
TOP_K = 5
GREEDY_TOKENS = 64

PROMPTS = [
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "The Denver Broncos defeated the Carolina Panthers in Super Bowl 50, which was played at",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
]


def load_make_fixtures():
    spec = importlib.util.spec_from_file_location("make_fixtures", SCRIPTS / "make-fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(name, obj):
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def llama_version():
    """llama-cpp-python's version plus the ggml version and commit its bundled library reports."""
    import ctypes

    import llama_cpp

    version = f"llama-cpp-python {llama_cpp.__version__}"
    try:
        lib = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"))
        for name in ("ggml_version", "ggml_commit"):
            fn = getattr(lib, name)
            fn.restype = ctypes.c_char_p
            version += f" {name[5:]} {fn().decode()}"
    except (OSError, AttributeError):
        pass
    return version


def reference(what):
    return f"llama.cpp ({llama_version()}) {what}"


def load_model(**kwargs):
    from llama_cpp import Llama

    return Llama(model_path=str(GGUF_PATH), verbose=False, **kwargs)


def tokenize(llm, text):
    return llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)


def tokens():
    mf = load_make_fixtures()
    llm = load_model(vocab_only=True)
    print("metadata tokenizer.ggml.add_bos_token =", llm.metadata.get("tokenizer.ggml.add_bos_token"))
    items = [{"text": t, "ids": tokenize(llm, t)} for t in mf.TOKENIZER_TEXTS]
    write("smollm2_llamacpp_tokens.json", {"reference": reference("tokenize(add_bos=False, special=True)"), "items": items})

    # Report differences from the transformers-based fixture, if it exists.
    hf_path = OUT / "smollm2_tokens.json"
    if hf_path.exists():
        hf = {item["text"]: item["ids"] for item in json.loads(hf_path.read_text())["items"]}
        diffs = [item for item in items if item["text"] in hf and hf[item["text"]] != item["ids"]]
        print(f"{len(diffs)} of {len(items)} strings tokenize differently from {hf_path.name}")
        for item in diffs:
            print(f"  {item['text']!r}\n    llama.cpp:    {item['ids']}\n    transformers: {hf[item['text']]}")


def log_softmax(logits):
    x = np.asarray(logits, dtype=np.float64)
    m = x.max()
    return x - (m + np.log(np.exp(x - m).sum()))


def logits():
    llm = load_model(logits_all=True, n_ctx=N_CTX, n_threads=N_THREADS, seed=0)
    prompts = []
    for text in PROMPTS:
        toks = tokenize(llm, text)
        llm.reset()
        llm.eval(toks)
        scores = np.asarray(llm.scores[: len(toks)], dtype=np.float32)
        assert np.all(np.any(scores != 0.0, axis=1)), "llm.scores was not filled in"
        positions = []
        for row in scores:
            lp = log_softmax(row)
            # Stable sort by descending logit so ties resolve to the lower id, like argmax.
            best = np.argsort(-row, kind="stable")[:TOP_K]
            positions.append(
                {
                    "top": [[int(i), round(float(lp[i]), 5)] for i in best],
                    "logit": round(float(row[best[0]]), 5),
                }
            )
        prompts.append({"text": text, "tokens": toks, "positions": positions})
    write(
        "smollm2_llamacpp_logits.json",
        {
            "reference": reference(f"eval(logits_all=True, n_threads={N_THREADS}); top {TOP_K} log-softmax"),
            "prompts": prompts,
        },
    )


def greedy():
    import llama_cpp

    # logits_all=True: llama-cpp-python 0.3.x only copies logits into llm.scores when it is set.
    llm = load_model(logits_all=True, n_ctx=N_CTX, n_threads=N_THREADS, seed=0)
    vocab = llama_cpp.llama_model_get_vocab(llm.model) if hasattr(llama_cpp, "llama_model_get_vocab") else None

    def is_eog(tok):
        if vocab is not None and hasattr(llama_cpp, "llama_vocab_is_eog"):
            return bool(llama_cpp.llama_vocab_is_eog(vocab, tok))
        return tok == llm.token_eos()

    items = []
    for text in PROMPTS:
        toks = tokenize(llm, text)
        llm.reset()
        llm.eval(toks)
        generated = []
        for _ in range(GREEDY_TOKENS):
            last = np.asarray(llm.scores[llm.n_tokens - 1], dtype=np.float32)
            assert np.any(last != 0.0), "llm.scores was not filled in"
            tok = int(np.argmax(last))
            generated.append(tok)
            llm.eval([tok])
        eog = [i for i, t in enumerate(generated) if is_eog(t)]
        decoded = llm.detokenize(generated, special=True).decode("utf-8", errors="replace")
        print(f"prompt {text!r}\n  -> {decoded!r}\n  eog at {eog}")
        items.append({"text": text, "tokens": toks, "generated": generated, "eog_positions": eog})
    write(
        "smollm2_llamacpp_greedy.json",
        {
            "reference": reference(f"greedy argmax, {GREEDY_TOKENS} tokens, no repetition penalty, n_threads={N_THREADS}"),
            "eos_token_id": llm.token_eos(),
            "items": items,
        },
    )


if __name__ == "__main__":
    which = sys.argv[1:] or ["tokens", "logits", "greedy"]
    if "tokens" in which:
        tokens()
    if "logits" in which:
        logits()
    if "greedy" in which:
        greedy()
