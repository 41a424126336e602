"""Peer for `pith bench embed`: sentence-transformers (PyTorch, CPU) on the same MiniLM
files and the same passages. Prints one JSON object like pith's.

    embed_st.py MODEL_DIR PASSAGES LIMIT REPS
"""

import json
import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from common import peak_rss_mib  # noqa: E402


def rate(model, texts, batch):
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        model.encode(texts[i : i + batch], batch_size=batch, normalize_embeddings=True)
    return len(texts) / (time.perf_counter() - start)


def main(model_dir, passages, limit, reps):
    import torch
    from sentence_transformers import SentenceTransformer

    texts = [l for l in open(passages).read().splitlines() if l.strip()][: int(limit)]
    t0 = time.perf_counter()
    model = SentenceTransformer(model_dir, device="cpu")
    load = time.perf_counter() - t0
    model.encode(texts[:2])  # untimed: lazy initialisation, as pith's warm-up
    batches = {}
    for batch in (1, 32):
        runs = [rate(model, texts, batch) for _ in range(int(reps))]
        batches[f"batch_{batch}"] = {"passages_per_s": statistics.median(runs), "runs": runs}
    print(json.dumps({
        "bench": "embed",
        "impl": f"sentence-transformers (torch {torch.__version__}, {torch.get_num_threads()} threads)",
        "passages": len(texts),
        "load_s": load,
        "batches": batches,
        "peak_rss_mib": peak_rss_mib(),
    }))


if __name__ == "__main__":
    main(*sys.argv[1:])
