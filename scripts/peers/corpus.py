"""Deterministic benchmark inputs, written once and read by pith and every peer.

    corpus.py passages OUT N         N passages of 3-6 real sentences, one per line
    corpus.py prompt OUT CHARS       one long text for generation prompts
    corpus.py ingest DIR MB          a directory of .txt documents totalling about MB megabytes
    corpus.py vectors DIR N Q DIM    N base and Q query random unit vectors (little-endian f32)

Sentences come from the repository's own text (samples/ and the SQuAD-style eval corpus,
eval/squad-superbowl), recombined with a fixed seed so every run sees the same input.
"""

import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEED = 20240611


def sentences():
    """Every sentence of the local text, in a stable order."""
    texts = [p.read_text() for p in sorted((ROOT / "samples").glob("*")) if p.is_file()]
    squad = ROOT / "eval/squad-superbowl/corpus.jsonl"
    texts += [json.loads(line)["text"] for line in squad.read_text().splitlines() if line.strip()]
    out = []
    for t in texts:
        # Markdown headings and list markers are not prose; keep sentences only.
        t = re.sub(r"^[#>*-].*$", " ", t, flags=re.M)
        out += [" ".join(s.split()) for s in re.split(r"(?<=[.!?])\s+", t) if len(s.split()) >= 5]
    return out


def passage(rng, pool):
    return " ".join(rng.choice(pool) for _ in range(rng.randint(3, 6)))


def write_passages(out, n):
    rng, pool = random.Random(SEED), sentences()
    Path(out).write_text("\n".join(passage(rng, pool) for _ in range(int(n))) + "\n")


def write_prompt(out, chars):
    rng, pool = random.Random(SEED + 1), sentences()
    text = ""
    while len(text) < int(chars):
        text += passage(rng, pool) + "\n\n"
    Path(out).write_text(text)


def write_ingest(directory, mb):
    rng, pool = random.Random(SEED + 2), sentences()
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    target, per_file, total, i = float(mb) * 1e6, 40_000, 0, 0
    while total < target:
        paragraphs, size = [], 0
        while size < per_file:
            paragraphs.append(passage(rng, pool))
            size += len(paragraphs[-1]) + 2
        body = f"Document {i}\n\n" + "\n\n".join(paragraphs) + "\n"
        (d / f"doc{i:05d}.txt").write_text(body)
        total += len(body.encode())
        i += 1


def write_vectors(directory, n, q, dim):
    import numpy as np

    rng = np.random.default_rng(SEED)
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for name, rows in (("base.f32", int(n)), ("queries.f32", int(q))):
        v = rng.standard_normal((rows, int(dim)), dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        v.astype("<f4").tofile(d / name)


if __name__ == "__main__":
    what, *args = sys.argv[1:]
    {"passages": write_passages, "prompt": write_prompt, "ingest": write_ingest, "vectors": write_vectors}[what](*args)
