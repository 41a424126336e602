"""Peer for `pith bench generate`: llama.cpp through llama-cpp-python on the same GGUF
and the very same prompt token ids (written by `pith bench generate --ids-dir`).

    generate_llama_cpp.py GGUF IDS_DIR LENGTHS DECODE REPS THREADS

Mirrors pith's loop: prefill the prompt, then DECODE times (greedy argmax, one-token
eval), with the same context capacity (2048). Prints one JSON object like pith's.
"""

import json
import statistics
import sys
import time

import numpy as np

from common import peak_rss_mib

CONTEXT = 2048  # pith's DEFAULT_CONTEXT: the same KV-cache capacity on both sides


def last_logits(llm):
    # llama-cpp-python 0.3.x no longer copies logits into llm.scores unless
    # logits_all is set (which would make llama.cpp keep logits for every prompt row);
    # read the last row from the context instead.
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))


def run_once(llm, ids, decode):
    llm.reset()
    start = time.perf_counter()
    llm.eval(ids)
    prefill = time.perf_counter() - start
    tokens, first = [], None
    decode_start = time.perf_counter()
    for _ in range(decode):
        tok = int(np.argmax(last_logits(llm)))
        if first is None:
            first = time.perf_counter() - start
        tokens.append(tok)
        llm.eval([tok])
    dec = time.perf_counter() - decode_start
    return {
        "prompt_tokens": len(ids), "decode_tokens": len(tokens),
        "prefill_tok_s": len(ids) / prefill, "decode_tok_s": len(tokens) / dec,
        "ttft_ms": first * 1e3, "first_tokens": tokens[:8],
    }


def main(gguf, ids_dir, lengths, decode, reps, threads):
    import llama_cpp

    t0 = time.perf_counter()
    llm = llama_cpp.Llama(model_path=gguf, n_ctx=CONTEXT, n_threads=int(threads),
                          n_threads_batch=int(threads), verbose=False)
    load = time.perf_counter() - t0
    all_ids = {n: json.load(open(f"{ids_dir}/ids_{n}.json")) for n in lengths.split(",")}
    run_once(llm, all_ids[min(all_ids, key=int)][:16], 4)  # untimed warm-up, as pith's
    results = []
    for n, ids in all_ids.items():
        runs = [run_once(llm, ids, int(decode)) for _ in range(int(reps))]
        med = lambda k: statistics.median(r[k] for r in runs)  # noqa: E731
        results.append({"prompt_tokens": int(n), "prefill_tok_s": med("prefill_tok_s"),
                        "decode_tok_s": med("decode_tok_s"), "ttft_ms": med("ttft_ms"), "runs": runs})
    print(json.dumps({
        "bench": "generate",
        "impl": f"llama.cpp via llama-cpp-python {llama_cpp.__version__}, {threads} threads",
        "device": "cpu", "context_capacity": CONTEXT, "load_s": load,
        "lengths": results, "peak_rss_mib": peak_rss_mib(),
    }))


if __name__ == "__main__":
    main(*sys.argv[1:])
