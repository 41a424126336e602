#!/usr/bin/env python3
"""Ways of reading the decode attention for attribution, compared offline on the logs of
`pith eval grounding --log FILE` (which keep, for the answer span holding the gold
answer, every decode row of the shipped heads and every kept sentence's scores): how
often each way's top sentence is a gold-passage sentence overlapping an answer span, on
all answers and on the even and odd ones (pick on one half, check on the other, and on
a set never tuned on). Logs written before answers were cut into clauses hold the whole
answer sentence (`sentence`); on them the clause reading cuts it as pith does now
(`attribution::answer_spans`) and reads the clause holding the gold answer.

    python3 scripts/attribution-variants.py docs/eval-grounding/squad-superbowl-160.jsonl ...
"""
import json
import math
import pathlib
import re
import sys

STOP = set("the a an of in on at to and or is was were be by for with as that this it its from which who".split())


EVAL = pathlib.Path(__file__).resolve().parent.parent / "eval"
GOLD = {
    q["id"]: q["answers"]
    for path in EVAL.glob("*/questions.jsonl")
    for q in map(json.loads, open(path))
}
CLAUSE_WORDS = 3


def answers(path):
    for line in open(path):
        r = json.loads(line)
        a = r["answerable"].get("attribution")
        if a and a.get("rows") and a.get("candidates"):
            yield dict(a, gold=GOLD.get(r["id"], []))


def normalize(text):
    text = "".join(c for c in text.lower() if not (c.isascii() and not c.isalnum() and not c.isspace()))
    return " ".join(w for w in text.split() if w not in ("a", "an", "the"))


def holds(text, answer):
    answer = normalize(answer)
    return bool(answer) and f" {answer} " in f" {normalize(text)} "


def clauses(text):
    """The cuts of `attribution::answer_spans` within one sentence, as (start, end)."""
    cuts = [0] + [m.end() for m in re.finditer(r"[,;:)](?=\s)|(?<=\s)(?=\()", text)] + [len(text)]
    spans = []
    for start, end in zip(cuts, cuts[1:]):
        if spans and len(text[spans[-1][0]:spans[-1][1]].split()) < CLAUSE_WORDS:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    if len(spans) > 1 and len(text[spans[-1][0]:spans[-1][1]].split()) < CLAUSE_WORDS:
        spans[-2:] = [(spans[-2][0], spans[-1][1])]
    return spans


def clause_rows(a):
    """The shipped reading of the clause holding the gold answer, on a log that holds the
    whole sentence: each row goes to the clause its token ends in."""
    text = a.get("sentence")
    if not text:
        return lifts(a)
    ends, at = [], 0
    for row in a["rows"]:
        token = row["token"]
        k = text.find(token, at)
        if k < 0:
            token = token.strip()
            k = text.find(token, at)
        at = at if k < 0 else k + len(token)
        ends.append(at)
    for start, end in clauses(text):
        if any(holds(text[start:end], g) for g in a["gold"]):
            rows = [row for row, e in zip(a["rows"], ends) if start < e <= end]
            return lifts(dict(a, rows=rows)) if rows else lifts(a)
    return lifts(a)


def lifts(a, weight=lambda token, shares: 1.0, heads=None, prior_weight=1.0):
    """Each kept sentence's pooled mass over the rows (each row times `weight`), as a
    share of all of it, minus `prior_weight` times its share of the context's tokens."""
    c = a["candidates"]
    n = len(c)
    heads = range(len(a["rows"][0]["mass"]) // n) if heads is None else heads
    prior = [x["support"] - x["lift"] for x in c]
    total = [0.0] * n
    for row in a["rows"]:
        mass = [sum(row["mass"][h * n + j] for h in heads) for j in range(n)]
        s = sum(mass)
        if s <= 0:
            continue
        w = weight(row["token"], [m / s for m in mass])
        total = [t + w * m for t, m in zip(total, mass)]
    t = sum(total) or 1.0
    return [x / t - prior_weight * p for x, p in zip(total, prior)]


def content(token, shares):
    t = token.strip().lower()
    return float(bool(re.search(r"\d", t) or (len(t) > 2 and t.isalpha() and t not in STOP)))


def z(xs):
    mu = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - mu) ** 2 for x in xs) / len(xs)) or 1.0
    return [(x - mu) / sd for x in xs]


def embedding(a):
    return [x["embedding"] for x in a["candidates"]]


def sentence_embedding(a):
    """MiniLM similarity of the answer sentence holding the span: logged since session 24;
    in logs of whole sentences (`sentence`) it is `embedding`."""
    key = "embedding" if a.get("sentence") else "sentence_embedding"
    return [x.get(key, 0.0) for x in a["candidates"]]


def copies(a, top=8, fallback=lifts, offsets=(0,)):
    """Each kept sentence's share of the attention on slots that hold the token the row
    predicts, or are `offsets` away from one (among each head's `top` heaviest slots):
    where the heads copied from; `fallback` where no row copied. Only the logs written
    by commit 6f42f76 keep each row's heaviest slots (`peaks`):
    docs/eval-grounding/squad-superbowl-320.jsonl."""
    n = len(a["candidates"])
    total = [0.0] * n
    for row in a["rows"]:
        for head in row.get("peaks", []):
            for j, w, offset in head[:top]:
                if offset in offsets and j < n:
                    total[j] += w
    if sum(total) <= 0:
        return fallback(a)
    return total


def copy_rows(a, top=1, offsets=(0,)):
    """The shipped reading over the rows where one of a head's `top` heaviest slots is
    a copy."""
    rows = [r for r in a["rows"] if any(any(o in offsets for _, _, o in h[:top]) for h in r.get("peaks", []))]
    if not rows:
        return lifts(a)
    return lifts(dict(a, rows=rows))


def mix(a, w):
    x, y = lifts(a), copies(a, fallback=lambda a: [0.0] * len(a["candidates"]))
    t = sum(y) or 1.0
    return [p + w * q / t for p, q in zip(x, y)]


VARIANTS = {
    "attention: pooled heads, length prior (shipped until session 24)": lifts,
    "the clause holding the gold answer (sentence logs)": clause_rows,
    "no prior": lambda a: lifts(a, prior_weight=0),
    "first head (15, 6) alone": lambda a: lifts(a, heads=[0]),
    "second head (14, 3) alone": lambda a: lifts(a, heads=[1]),
    "rows weighted by their peak share": lambda a: lifts(a, lambda t, s: max(s)),
    "content-word rows only": lambda a: lifts(a, content),
    "MiniLM similarity to the logged span (sentence or clause)": embedding,
    "z(shipped) + 0.5 z(MiniLM)": lambda a: [p + 0.5 * q for p, q in zip(z(lifts(a)), z(embedding(a)))],
    "z(clause) + w z(MiniLM of the answer sentence), w = 0.25": lambda a: [
        p + 0.25 * q for p, q in zip(z(clause_rows(a)), z(sentence_embedding(a)))
    ],
    "z(clause) + w z(MiniLM of the answer sentence), w = 0.5": lambda a: [
        p + 0.5 * q for p, q in zip(z(clause_rows(a)), z(sentence_embedding(a)))
    ],
    "z(clause) + w z(MiniLM of the answer sentence), w = 1 (shipped since session 24)": lambda a: [
        p + 1.0 * q for p, q in zip(z(clause_rows(a)), z(sentence_embedding(a)))
    ],
    "z(peak-weighted) + 0.5 z(MiniLM)": lambda a: [
        p + 0.5 * q for p, q in zip(z(lifts(a, lambda t, s: max(s))), z(embedding(a)))
    ],
    "copy mass (top 8 slots)": copies,
    "copy mass (top 1 slot)": lambda a: copies(a, top=1),
    "copy mass (top 3 slots)": lambda a: copies(a, top=3),
    "rows whose peak is a copy": copy_rows,
    "rows with a copy in the top 3": lambda a: copy_rows(a, top=3),
    "copy mass, slot before the copy (offset -1)": lambda a: copies(a, offsets=(-1,)),
    "copy mass, slot after the copy (offset 1)": lambda a: copies(a, offsets=(1,)),
    "copy mass, offsets -2..2": lambda a: copies(a, offsets=(-2, -1, 0, 1, 2)),
    "rows with a copy within 2 slots of the peak": lambda a: copy_rows(a, offsets=(-2, -1, 0, 1, 2)),
    "shipped + 0.5 copy share": lambda a: mix(a, 0.5),
    "shipped + 1 copy share": lambda a: mix(a, 1.0),
}


def main():
    for path in sys.argv[1:]:
        found = [a for a in answers(path) if "sentence" not in a or any(holds(a["sentence"], g) for g in a["gold"])]
        print(f"{path}: {len(found)} answers holding the gold answer")
        print("| variant | all | even | odd |\n|---|---|---|---|")
        for name, score in VARIANTS.items():
            hits = []
            for a in found:
                s = score(a)
                hits.append(a["candidates"][max(range(len(s)), key=s.__getitem__)]["strict"])
            share = lambda h: f"{sum(h) / max(1, len(h)):.3f} ({sum(h)}/{len(h)})"
            print(f"| {name} | {share(hits)} | {share(hits[0::2])} | {share(hits[1::2])} |")


if __name__ == "__main__":
    main()
