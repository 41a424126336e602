"""Reads the JSON each benchmark printed, prints the side-by-side tables (with the
ratio pith/peer), and writes docs/benchmarks/results.json and the decode-vs-context plot.

    report.py RAW_DIR OUT_DIR

RAW_DIR holds machine.json and a JSON file per stage (STAGES; the GPU run and ingest
are optional). A stage missing from RAW_DIR keeps its figures from the results.json
already in OUT_DIR, and is listed under "carried_over".
"""

import json
import sys
from pathlib import Path


def load(raw, name):
    p = raw / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "-"


def fmt(x, digits=1):
    if x is None:
        return "-"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def table(title, header, rows):
    """A markdown table, printed and returned."""
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    return text


def embed_table(pith, peer):
    rows = []
    for b in ("batch_1", "batch_32"):
        a, c = pith["batches"][b]["passages_per_s"], peer["batches"][b]["passages_per_s"]
        rows.append([f"passages/s, {b.replace('_', ' ')}", fmt(a), fmt(c), ratio(a, c)])
    a, c = pith["peak_rss_mib"], peer["peak_rss_mib"]
    rows.append(["peak RSS (MiB, whole process)", fmt(a, 0), fmt(c, 0), ratio(a, c)])
    title = f"Embedding, {pith['passages']} passages (mean {pith['mean_chars']:.0f} chars), pith {pith['device']} vs {peer['impl']}"
    return table(title, ["", "pith", "peer", "pith/peer"], rows)


def search_table(pith, peer):
    rows = []
    peer_sizes = {s["passages"]: s for s in peer["sizes"]}
    for s in pith["sizes"]:
        n, v, h = s["passages"], s["methods"]["vector"], s["methods"]["hybrid"]
        pv = peer_sizes.get(n, {}).get("methods", {}).get("vector", {})
        rows.append([f"{n:,}", "vector p50 (ms)", fmt(v["p50_ms"], 2), fmt(pv.get("p50_ms"), 2), ratio(v["p50_ms"], pv.get("p50_ms"))])
        rows.append([f"{n:,}", "vector p99 (ms)", fmt(v["p99_ms"], 2), fmt(pv.get("p99_ms"), 2), ratio(v["p99_ms"], pv.get("p99_ms"))])
        rows.append([f"{n:,}", "recall@10 vs exact", fmt(v["recall_at_k"], 3), fmt(pv.get("recall_at_k"), 3), "-"])
        rows.append([f"{n:,}", "hybrid p50 (ms)", fmt(h["p50_ms"], 2), "-", "-"])
        rows.append([f"{n:,}", "hybrid p99 (ms)", fmt(h["p99_ms"], 2), "-", "-"])
        rows.append([f"{n:,}", "build (inserts/s)", fmt(s["inserts_per_s"], 0), fmt(peer_sizes.get(n, {}).get("inserts_per_s"), 0),
                     ratio(s["inserts_per_s"], peer_sizes.get(n, {}).get("inserts_per_s"))])
    title = f"Search, k={pith['k']}, {pith['queries']} queries of random unit vectors (dim {pith['dim']}), pith vs {peer['impl']}"
    return table(title, ["passages", "", "pith", "peer", "pith/peer"], rows)


def by_length(run):
    return {r["prompt_tokens"]: r for r in run["lengths"]}


GEN_ROWS = (("prefill_tok_s", "prefill tokens/s", 1), ("decode_tok_s", "decode tokens/s", 1),
            ("ttft_ms", "time to first token (ms)", 0))


def generate_table(pith, half, peer, length):
    """pith on flex with f32 weights (the CPU default) and with f16 weights, against llama.cpp."""
    p, h, q = by_length(pith)[length], by_length(half)[length], by_length(peer)[length]
    rows = [[label, fmt(p[k], d), fmt(h[k], d), fmt(q[k], d), ratio(p[k], q[k]), ratio(h[k], q[k])] for k, label, d in GEN_ROWS]
    rows.append(["RSS after loading (MiB)", fmt(pith.get("loaded_rss_mib"), 0), fmt(half.get("loaded_rss_mib"), 0), "-", "-", "-"])
    rows.append(["peak RSS (MiB, whole run)", fmt(pith["peak_rss_mib"], 0), fmt(half["peak_rss_mib"], 0), fmt(peer["peak_rss_mib"], 0),
                 ratio(pith["peak_rss_mib"], peer["peak_rss_mib"]), ratio(half["peak_rss_mib"], peer["peak_rss_mib"])])
    decoded = p["runs"][0]["decode_tokens"]
    title = f"Generation, {length}-token prompt, {decoded} greedy tokens: pith cpu (f32 and f16 weights) vs {peer['impl']}"
    return table(title, ["", "pith cpu f32", "pith cpu f16", "llama.cpp", "f32/llama.cpp", "f16/llama.cpp"], rows)


def gpu_table(cpu, gpu):
    """pith on wgpu (here Mesa lavapipe, Vulkan on the CPU) against pith on flex."""
    length = min(by_length(gpu))
    g, c = by_length(gpu)[length], by_length(cpu)[length]
    rows = [[label, fmt(g[k], d), fmt(c[k], d), ratio(g[k], c[k])] for k, label, d in GEN_ROWS]
    rows.append(["peak RSS (MiB, whole run)", fmt(gpu["peak_rss_mib"], 0), fmt(cpu["peak_rss_mib"], 0), "-"])
    decoded = g["runs"][0]["decode_tokens"]
    title = f"pith on wgpu (Mesa lavapipe: Vulkan emulated on the CPU; {gpu.get('precision', 'f32')} weights), {length}-token prompt, {decoded} tokens"
    return table(title, ["", "pith gpu (lavapipe)", "pith cpu", "gpu/cpu"], rows)


def sweep_table(pith, half, peer, threads):
    p, h, q = by_length(pith), by_length(half), by_length(peer)
    rows = []
    for n in sorted(set(p) & set(h) & set(q)):
        rows.append([n, fmt(p[n]["decode_tok_s"]), fmt(h[n]["decode_tok_s"]), fmt(q[n]["decode_tok_s"]),
                     ratio(p[n]["decode_tok_s"], q[n]["decode_tok_s"]), ratio(h[n]["decode_tok_s"], q[n]["decode_tok_s"]),
                     fmt(p[n]["prefill_tok_s"]), fmt(q[n]["prefill_tok_s"]), ratio(p[n]["prefill_tok_s"], q[n]["prefill_tok_s"]),
                     fmt(p[n]["ttft_ms"], 0), fmt(q[n]["ttft_ms"], 0), ratio(p[n]["ttft_ms"], q[n]["ttft_ms"])])
    header = ["prompt tokens", "pith f32 decode tok/s", "pith f16 decode tok/s", "llama.cpp decode tok/s", "f32 ratio", "f16 ratio",
              "pith f32 prefill tok/s", "llama.cpp prefill tok/s", "ratio", "pith f32 TTFT ms", "llama.cpp TTFT ms", "ratio"]
    return table(f"Generation against context length (CPU, {threads} thread(s) each)", header, rows)


def ingest_table(ingest):
    rows = [[ingest["documents"], fmt(ingest["mb"], 2), ingest["passages"], fmt(ingest["wall_s"]),
             fmt(ingest["documents_per_s"], 2), fmt(ingest["mb_per_s"], 3), fmt(ingest["passages_per_s"], 1), fmt(ingest["peak_rss_mib"], 0)]]
    header = ["documents", "MB", "passages", "wall s (median)", "documents/s", "MB/s", "passages/s", "peak RSS MiB"]
    return table(f"Ingest end to end (`pith --device cpu ingest`), {ingest['reps']} run(s)", header, rows)


def ask_table(ask):
    base = ask["no_pruning"]["first_token_ms"]
    rows = [[name, fmt(ask[name]["context_tokens"], 0), fmt(ask[name]["first_token_ms"], 0),
             ratio(ask[name]["first_token_ms"], base), fmt(ask[name]["f1"], 3), fmt(ask[name]["containment"], 3)]
            for name in ("no_pruning", "2x", "4x") if name in ask]
    header = ["pruning", "context tokens (mean)", "TTFT ms (median)", "TTFT / no pruning", "F1", "containment"]
    return table("ask() on the eval set's 5-passage contexts (`pith eval qa`, CPU, greedy)", header, rows)


def plot(pith, half, peer, threads, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    series = ((pith, "pith (CPU, flex, f32 weights)", "o-"), (half, "pith (CPU, flex, f16 weights)", "^-"),
              (peer, "llama.cpp (CPU)", "s--"))
    for run, label, style in series:
        data = by_length(run)
        xs = sorted(data)
        a.plot(xs, [data[x]["decode_tok_s"] for x in xs], style, label=label)
        b.plot(xs, [data[x]["ttft_ms"] for x in xs], style, label=label)
    a.set(xlabel="prompt tokens", ylabel="decode tokens/s", title="Decode speed", ylim=(0, None))
    b.set(xlabel="prompt tokens", ylabel="time to first token (ms)", title="Time to first token", ylim=(0, None))
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"SmolLM2-135M Q4_1, greedy, {threads} CPU thread(s) each (medians)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


STAGES = ("pith-embed", "peer-embed", "pith-search", "peer-search", "pith-generate-cpu", "pith-generate-cpu-f16",
          "peer-generate", "pith-generate-gpu", "ingest", "ask")


def main(raw, out):
    raw, out = Path(raw), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    r = {name: load(raw, name) for name in ("machine",) + STAGES}
    # Stages left out of this run (BENCH_STAGES) keep the last run's figures, marked.
    previous = out / "results.json"
    previous = json.loads(previous.read_text()) if previous.exists() else {}
    carried = [n for n in STAGES if r[n] is None and previous.get(n) is not None]
    for name in carried:
        r[name] = previous[name]
    r["carried_over"] = carried
    tables = [embed_table(r["pith-embed"], r["peer-embed"]), search_table(r["pith-search"], r["peer-search"])]
    main_len = 512 if 512 in by_length(r["pith-generate-cpu"]) else min(by_length(r["pith-generate-cpu"]))
    half = r["pith-generate-cpu-f16"]
    tables.append(generate_table(r["pith-generate-cpu"], half, r["peer-generate"], main_len))
    threads = (r["machine"] or {}).get("threads", "?")
    tables.append(sweep_table(r["pith-generate-cpu"], half, r["peer-generate"], threads))
    if r["pith-generate-gpu"]:
        tables.append(gpu_table(r["pith-generate-cpu"], r["pith-generate-gpu"]))
    if r["ingest"]:
        tables.append(ingest_table(r["ingest"]))
    if r["ask"]:
        tables.append(ask_table(r["ask"]))
    plot(r["pith-generate-cpu"], half, r["peer-generate"], threads, out / "decode-vs-context.png")
    (out / "results.json").write_text(json.dumps(r, indent=1) + "\n")
    if carried:
        tables.append(f"Carried over from an earlier run (BENCH_STAGES left them out): {', '.join(carried)}.\n")
    (out / "tables.md").write_text("\n".join(tables))


if __name__ == "__main__":
    main(*sys.argv[1:])
