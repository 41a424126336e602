"""Times `pith ingest` end to end (process start to exit) on a corpus directory.

    ingest_run.py PITH CORPUS_DIR DB REPS PASSAGES_OUT

Each repetition starts from an empty database. Peak RSS is the largest child's
high-water mark (getrusage of the children). Prints one JSON object. The passages
ingest made are written to PASSAGES_OUT, one per line, so that the embedder alone
can be timed on exactly them (`pith bench embed --passages PASSAGES_OUT`).
"""

import json
import os
import re
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path


def fresh(db):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)


def dump_passages(db, out):
    """The stored passages in ingest order, whitespace runs as one space (the
    embedder's tokenizer splits on any whitespace, so the tokens are the same)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT text FROM passages ORDER BY id").fetchall()
    Path(out).write_text("".join(" ".join(text.split()) + "\n" for (text,) in rows))


def main(pith, corpus, db, reps, passages_out):
    files = sorted(Path(corpus).glob("*.txt"))
    size = sum(f.stat().st_size for f in files)
    walls, passages = [], None
    for _ in range(int(reps)):
        fresh(db)
        start = time.perf_counter()
        out = subprocess.run([pith, "--device", "cpu", "--db", db, "ingest", corpus],
                             check=True, capture_output=True, text=True).stdout
        walls.append(time.perf_counter() - start)
        passages = int(re.search(r"\((\d+) passages\)", out).group(1))
    dump_passages(db, passages_out)
    fresh(db)
    wall = statistics.median(walls)
    print(json.dumps({
        "bench": "ingest", "impl": "pith", "documents": len(files), "mb": size / 1e6, "passages": passages,
        "reps": int(reps), "wall_s": wall, "runs_wall_s": walls,
        "documents_per_s": len(files) / wall, "mb_per_s": size / 1e6 / wall, "passages_per_s": passages / wall,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main(*sys.argv[1:])
