"""Reads the JSON each benchmark printed, prints the side-by-side tables (with the
ratio pith/peer), and writes docs/benchmarks/results.json and the decode-vs-context plot.

    report.py RAW_DIR OUT_DIR

RAW_DIR holds machine.json and a JSON file per stage (STAGES; the GPU run and ingest
are optional), each with GNU time's "CPU% max-RSS-KiB wall-s" beside it in STAGE.time.
Every stage's entry in results.json gets cpu_percent (CPU time over wall time of the
stage's whole process, from that file) and threads (what it was given: machine.json's
threads), and tables.md shows both beside every side's figures. A stage missing from
RAW_DIR keeps its figures from the results.json already in OUT_DIR, and is listed under
"carried_over".
"""

import json
import sys
from pathlib import Path


def load(raw, name):
    p = raw / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def load_time(raw, name):
    """CPU percent from GNU time's "%P %M %e" line (scripts/bench's stage()), or None.

    A failed command's file starts with "Command exited with non-zero status N": the
    figures are on the last line. %P is "?%" when no time elapsed.
    """
    p = raw / f"{name}.time"
    lines = [line for line in p.read_text().splitlines() if line.strip()] if p.exists() else []
    if not lines:
        return None
    percent = lines[-1].split()[0].rstrip("%")
    try:
        return int(percent)
    except ValueError:
        return None


def cpu(run, figure=0):
    """A side's CPU use, "187%", where it has the figure beside it."""
    if not run or run.get("cpu_percent") is None or figure is None:
        return "-"
    return f"{run['cpu_percent']:.0f}%"


def threads_line(*sides):
    """The line under a table: the threads each side was given."""
    return "Threads given: " + ", ".join(f"{run.get('threads', '?')} to {label}" for label, run in sides if run) + "."


CPU_NOTE = ("CPU: each side's whole process over its stage (loading and warm-up included), CPU time over wall time "
            "(GNU time's %P); 100% is one core kept busy. Threads: what each side was given (BENCH_THREADS).\n")


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "-"


def fmt(x, digits=1):
    if x is None:
        return "-"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def table(title, header, rows, note=None):
    """A markdown table (with a line under it), printed and returned."""
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    if note:
        lines += ["", note]
    text = "\n".join(lines) + "\n"
    print(text)
    return text


def embed_table(pith, peer):
    rows = []
    for b in ("batch_1", "batch_32"):
        a, c = pith["batches"][b]["passages_per_s"], peer["batches"][b]["passages_per_s"]
        rows.append([f"passages/s, {b.replace('_', ' ')}", fmt(a), cpu(pith, a), fmt(c), cpu(peer, c), ratio(a, c)])
    a, c = pith["peak_rss_mib"], peer["peak_rss_mib"]
    rows.append(["peak RSS (MiB, whole process)", fmt(a, 0), cpu(pith, a), fmt(c, 0), cpu(peer, c), ratio(a, c)])
    title = f"Embedding, {pith['passages']} passages (mean {pith['mean_chars']:.0f} chars), pith {pith['device']} vs {peer['impl']}"
    note = threads_line(("pith", pith), ("sentence-transformers", peer))
    return table(title, ["", "pith", "CPU", "peer", "CPU", "pith/peer"], rows, note)


def search_table(pith, peer):
    rows = []
    peer_sizes = {s["passages"]: s for s in peer["sizes"]}
    for s in pith["sizes"]:
        n, v, h = s["passages"], s["methods"]["vector"], s["methods"]["hybrid"]
        f = s["methods"].get("vector_filtered", {})
        pv = peer_sizes.get(n, {}).get("methods", {}).get("vector", {})
        ins = peer_sizes.get(n, {}).get("inserts_per_s")
        for label, a, c, digits, with_ratio in (("vector p50 (ms)", v["p50_ms"], pv.get("p50_ms"), 2, True),
                                                ("vector p99 (ms)", v["p99_ms"], pv.get("p99_ms"), 2, True),
                                                ("recall@10 vs exact", v["recall_at_k"], pv.get("recall_at_k"), 3, False),
                                                ("hybrid p50 (ms)", h["p50_ms"], None, 2, False),
                                                ("vector, 1 document in 10, p50 (ms)", f.get("p50_ms"), None, 2, False),
                                                ("vector, 1 document in 10, recall@10", f.get("recall_at_k"), None, 3, False),
                                                ("hybrid p99 (ms)", h["p99_ms"], None, 2, False),
                                                ("build (inserts/s)", s["inserts_per_s"], ins, 0, True),
                                                ("first query, building the index (ms)", s.get("first_query_ms"), None, 1, False),
                                                ("index memory (MiB)", s.get("index_mib"), None, 1, False)):
            if a is None:
                continue
            rows.append([f"{n:,}", label, fmt(a, digits), cpu(pith, a), fmt(c, digits), cpu(peer, c),
                         ratio(a, c) if with_ratio else "-"])
    title = f"Search, k={pith['k']}, {pith['queries']} queries of random unit vectors (dim {pith['dim']}), pith vs {peer['impl']}"
    note = threads_line(("pith", pith), ("sqlite-vec", peer))
    return table(title, ["passages", "", "pith", "CPU", "peer", "CPU", "pith/peer"], rows, note)


def by_length(run):
    return {r["prompt_tokens"]: r for r in run["lengths"]}


GEN_ROWS = (("prefill_tok_s", "prefill tokens/s", 1), ("decode_tok_s", "decode tokens/s", 1),
            ("ttft_ms", "time to first token (ms)", 0))


def gen_sides(r):
    """The CPU generation runs, a row each: pith with f32, f16 and stored (q) weights,
    then llama.cpp, the peer every ratio is to. Runs this results.json lacks are left out."""
    sides = (("pith cpu f32", r["pith-generate-cpu"]), ("pith cpu f16", r["pith-generate-cpu-f16"]),
             ("pith cpu q", r["pith-generate-cpu-q"]), ("llama.cpp", r["peer-generate"]))
    return [(label, run) for label, run in sides if run]


def gen_row(label, run, peer, length, rss=False):
    """One side at one prompt length: its CPU, the GEN_ROWS figures (with rss, its RSS
    after loading and peak), and its ratios to llama.cpp (none on llama.cpp's own row)."""
    x, q = by_length(run).get(length), by_length(peer).get(length)
    if x is None:
        return None
    own = run is peer
    figures = [fmt(x[k], d) for k, _, d in GEN_ROWS]
    ratios = ["-" if own or q is None else ratio(x[k], q[k]) for k, _, _ in GEN_ROWS]
    if rss:
        figures += [fmt(run.get("loaded_rss_mib"), 0), fmt(run["peak_rss_mib"], 0)]
        ratios.append("-" if own else ratio(run["peak_rss_mib"], peer["peak_rss_mib"]))
    return [label, cpu(run)] + figures + ratios


def ratio_header(rss=False):
    short = {"prefill_tok_s": "prefill", "decode_tok_s": "decode", "ttft_ms": "TTFT"}
    return [f"{short[k]} / llama.cpp" for k, _, _ in GEN_ROWS] + (["peak RSS / llama.cpp"] if rss else [])


def generate_table(sides, length):
    """pith on flex with f32, f16 and stored (q) weights against llama.cpp, a row each."""
    peer = sides[-1][1]
    rows = [row for label, run in sides for row in [gen_row(label, run, peer, length, rss=True)] if row]
    decoded = by_length(sides[0][1])[length]["runs"][0]["decode_tokens"]
    weights = ", ".join(label.split()[-1] for label, _ in sides[:-1])
    title = f"Generation, {length}-token prompt, {decoded} greedy tokens: pith cpu ({weights} weights) vs {peer['impl']}"
    header = (["", "CPU"] + [label for _, label, _ in GEN_ROWS] + ["RSS after loading (MiB)", "peak RSS (MiB, whole run)"]
              + ratio_header(rss=True))
    return table(title, header, rows, threads_line(*sides))


def gpu_table(cpu_run, gpu):
    """pith on wgpu (here Mesa lavapipe, Vulkan on the CPU) against pith on flex."""
    length = min(by_length(gpu))
    g, c = by_length(gpu)[length], by_length(cpu_run).get(length, {})
    rows = [[label, fmt(g[k], d), cpu(gpu, g[k]), fmt(c.get(k), d), cpu(cpu_run, c.get(k)), ratio(g[k], c.get(k))]
            for k, label, d in GEN_ROWS]
    rows.append(["peak RSS (MiB, whole run)", fmt(gpu["peak_rss_mib"], 0), cpu(gpu), fmt(cpu_run["peak_rss_mib"], 0), cpu(cpu_run), "-"])
    decoded = g["runs"][0]["decode_tokens"]
    title = f"pith on wgpu (Mesa lavapipe: Vulkan emulated on the CPU; {gpu.get('precision', 'f32')} weights), {length}-token prompt, {decoded} tokens"
    note = threads_line(("pith gpu (lavapipe)", gpu), (f"pith cpu {cpu_run.get('precision', 'f32')}", cpu_run))
    return table(title, ["", "pith gpu (lavapipe)", "CPU", f"pith cpu {cpu_run.get('precision', 'f32')}", "CPU", "gpu/cpu"], rows, note)


def sweep_table(sides):
    peer = sides[-1][1]
    rows = []
    for n in sorted(set().union(*(by_length(run) for _, run in sides))):
        rows += [[n] + row for label, run in sides for row in [gen_row(label, run, peer, n)] if row]
    header = ["prompt tokens", "", "CPU"] + [label for _, label, _ in GEN_ROWS] + ratio_header()
    return table("Generation against context length (CPU)", header, rows, threads_line(*sides))


def ingest_table(ingest, embed):
    """Ingest end to end, against the embedder's own passages/s (batch 32) on the passages
    ingest made, in the same run."""
    own = embed["batches"]["batch_32"]["passages_per_s"] if embed else None
    rows = [[ingest["documents"], fmt(ingest["mb"], 2), ingest["passages"], fmt(ingest["wall_s"]), cpu(ingest),
             fmt(ingest["documents_per_s"], 2), fmt(ingest["mb_per_s"], 3), fmt(ingest["passages_per_s"], 1),
             fmt(own, 1), cpu(embed) if embed else "-", ratio(ingest["passages_per_s"], own),
             fmt(ingest["peak_rss_mib"], 0)]]
    header = ["documents", "MB", "passages", "wall s (median)", "CPU", "documents/s", "MB/s", "passages/s",
              "embedder alone, same passages, batch 32", "embedder CPU", "ingest / embedder", "peak RSS MiB"]
    return table(f"Ingest end to end (`pith --device cpu ingest`, process start to exit), {ingest['reps']} run(s)",
                 header, rows, threads_line(("pith ingest", ingest), ("pith embed", embed)))


def ask_table(ask):
    base = ask["no_pruning"]["first_token_ms"]
    rows = [[name, fmt(ask[name]["context_tokens"], 0), fmt(ask[name]["first_token_ms"], 0), cpu(ask),
             ratio(ask[name]["first_token_ms"], base), fmt(ask[name]["f1"], 3), fmt(ask[name]["containment"], 3)]
            for name in ("no_pruning", "2x", "4x") if name in ask]
    header = ["pruning", "context tokens (mean)", "TTFT ms (median)", "CPU", "TTFT / no pruning", "F1", "containment"]
    return table("ask() on the eval set's 5-passage contexts (`pith eval qa`, CPU, greedy)", header, rows,
                 threads_line(("pith", ask)))


def plot(sides, threads, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    styles = {"pith cpu f32": ("pith (CPU, flex, f32 weights)", "o-"), "pith cpu f16": ("pith (CPU, flex, f16 weights)", "^-"),
              "pith cpu q": ("pith (CPU, stored q weights)", "d-"), "llama.cpp": ("llama.cpp (CPU)", "s--")}
    for side, run in sides:
        label, style = styles[side]
        label += f", {cpu(run)} CPU" if run.get("cpu_percent") is not None else ""
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
          "pith-generate-cpu-q", "peer-generate", "pith-generate-gpu", "ingest", "pith-embed-ingest", "ask")


def main(raw, out):
    raw, out = Path(raw), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    r = {name: load(raw, name) for name in ("machine",) + STAGES}
    threads = (r["machine"] or {}).get("threads", "?")
    for name in STAGES:  # what this run measured: its CPU use, and the threads it was given
        if r[name] is not None:
            r[name]["cpu_percent"] = load_time(raw, name)
            r[name]["threads"] = threads
    # Stages left out of this run (BENCH_STAGES) keep the last run's figures, marked.
    previous = out / "results.json"
    previous = json.loads(previous.read_text()) if previous.exists() else {}
    carried = [n for n in STAGES if r[n] is None and previous.get(n) is not None]
    for name in carried:
        r[name] = previous[name]
    r["carried_over"] = carried
    tables = [CPU_NOTE, embed_table(r["pith-embed"], r["peer-embed"]), search_table(r["pith-search"], r["peer-search"])]
    main_len = 512 if 512 in by_length(r["pith-generate-cpu"]) else min(by_length(r["pith-generate-cpu"]))
    sides = gen_sides(r)
    tables.append(generate_table(sides, main_len))
    tables.append(sweep_table(sides))
    if r["pith-generate-gpu"]:
        tables.append(gpu_table(r["pith-generate-cpu"], r["pith-generate-gpu"]))
    if r["ingest"]:
        tables.append(ingest_table(r["ingest"], r["pith-embed-ingest"]))
    if r["ask"]:
        tables.append(ask_table(r["ask"]))
    plot(sides, r["peer-generate"].get("threads", threads), out / "decode-vs-context.png")
    (out / "results.json").write_text(json.dumps(r, indent=1) + "\n")
    if carried:
        tables.append(f"Carried over from an earlier run (BENCH_STAGES left them out): {', '.join(carried)}.\n")
    (out / "tables.md").write_text("\n".join(tables))


if __name__ == "__main__":
    main(*sys.argv[1:])
