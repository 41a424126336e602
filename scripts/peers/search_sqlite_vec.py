"""Peer for `pith bench search`: sqlite-vec queried directly from Python (apsw, because
this Python's sqlite3 module cannot load extensions), on the same vectors and texts.

    search_sqlite_vec.py VECTORS QUERIES PASSAGES DIM SIZES K REPS DIR

For each size: a vec0 table (cosine) of the first N vectors, then every query `REPS`
times: KNN k=K and the hits' texts (pith's search returns the passages too).
p50/p99 are medians over repetitions; recall@K is against exact numpy search.
"""

import json
import os
import statistics
import sys
import time

import apsw
import numpy as np
import sqlite_vec

from common import peak_rss_mib, percentile


def open_db(path, dim):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    conn = apsw.Connection(path)
    conn.enable_load_extension(True)
    conn.load_extension(sqlite_vec.loadable_path())
    # The same settings pith's store uses.
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE passages(id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
    conn.execute(f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{dim}] distance_metric=cosine)")
    return conn


def fill(conn, base, texts):
    for start in range(0, len(base), 1000):
        with conn:
            for i in range(start, min(start + 1000, len(base))):
                conn.execute("INSERT INTO passages(id, text) VALUES (?, ?)", (i + 1, texts[i % len(texts)]))
                conn.execute("INSERT INTO v(rowid, embedding) VALUES (?, ?)", (i + 1, base[i].tobytes()))


def query(conn, q, k):
    ids = [r[0] for r in conn.execute(
        "SELECT rowid, distance FROM v WHERE embedding MATCH ? AND k = ? ORDER BY distance", (q.tobytes(), k))]
    marks = ",".join("?" * len(ids))
    conn.execute(f"SELECT id, text FROM passages WHERE id IN ({marks})", ids).fetchall()
    return [i - 1 for i in ids]


def one_size(base, queries, texts, n, k, reps, path):
    conn = open_db(path, base.shape[1])
    t0 = time.perf_counter()
    fill(conn, base[:n], texts)
    build = time.perf_counter() - t0
    sims = queries @ base[:n].T
    exact = np.argsort(-sims, axis=1)[:, :k]
    p50, p99, found = [], [], []
    for rep in range(reps):
        lat = []
        for q in queries:
            s = time.perf_counter()
            hits = query(conn, q, k)
            lat.append((time.perf_counter() - s) * 1e3)
            if rep == 0:
                found.append(hits)
        p50.append(percentile(lat, 50))
        p99.append(percentile(lat, 99))
    recall = np.mean([len(set(f) & set(e.tolist())) / k for f, e in zip(found, exact)])
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    vector = {"p50_ms": statistics.median(p50), "p99_ms": statistics.median(p99),
              "runs_p50_ms": p50, "runs_p99_ms": p99, "recall_at_k": float(recall)}
    return {"passages": n, "build_s": build, "inserts_per_s": n / build, "methods": {"vector": vector}}


def main(vectors, queries, passages, dim, sizes, k, reps, directory):
    dim, k, reps = int(dim), int(k), int(reps)
    base = np.fromfile(vectors, dtype="<f4").reshape(-1, dim)
    qs = np.fromfile(queries, dtype="<f4").reshape(-1, dim)
    texts = [l for l in open(passages).read().splitlines() if l.strip()]
    runs = [one_size(base, qs, texts, int(n), k, reps, os.path.join(directory, f"peer-vec-{n}.db"))
            for n in sizes.split(",")]
    print(json.dumps({
        "bench": "search",
        "impl": f"sqlite-vec {sqlite_vec.__version__} via apsw (SQLite {apsw.sqlite_lib_version()})",
        "k": k, "queries": len(qs), "dim": dim, "sizes": runs, "peak_rss_mib": peak_rss_mib(),
    }))


if __name__ == "__main__":
    main(*sys.argv[1:])
