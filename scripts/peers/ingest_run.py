"""Times `pith ingest` end to end (process start to exit) on a corpus directory.

    ingest_run.py PITH CORPUS_DIR DB REPS

Each repetition starts from an empty database. Peak RSS is the largest child's
high-water mark (getrusage of the children). Prints one JSON object.
"""

import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def fresh(db):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)


def main(pith, corpus, db, reps):
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
