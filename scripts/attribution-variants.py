#!/usr/bin/env python3
"""Ways of reading the decode attention for attribution, compared offline on the logs of
`pith eval grounding --log FILE` (which keep, for each answer sentence holding the gold
answer, every decode row of the shipped heads and every kept sentence's scores): how
often each way's top sentence is a gold-passage sentence overlapping an answer span, on
all answers and on the even and odd ones (pick on one half, check on the other, and on
a set never tuned on).

    python3 scripts/attribution-variants.py docs/eval-grounding/squad-superbowl-160.jsonl ...
"""
import json
import math
import re
import sys

STOP = set("the a an of in on at to and or is was were be by for with as that this it its from which who".split())


def answers(path):
    for line in open(path):
        a = json.loads(line)["answerable"].get("attribution")
        if a and a.get("rows") and a.get("candidates"):
            yield a


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


VARIANTS = {
    "shipped (pooled heads, length prior)": lifts,
    "no prior": lambda a: lifts(a, prior_weight=0),
    "first head (15, 6) alone": lambda a: lifts(a, heads=[0]),
    "second head (14, 3) alone": lambda a: lifts(a, heads=[1]),
    "rows weighted by their peak share": lambda a: lifts(a, lambda t, s: max(s)),
    "content-word rows only": lambda a: lifts(a, content),
    "MiniLM similarity to the answer sentence": embedding,
    "z(shipped) + 0.5 z(MiniLM)": lambda a: [p + 0.5 * q for p, q in zip(z(lifts(a)), z(embedding(a)))],
    "z(peak-weighted) + 0.5 z(MiniLM)": lambda a: [
        p + 0.5 * q for p, q in zip(z(lifts(a, lambda t, s: max(s))), z(embedding(a)))
    ],
}


def main():
    for path in sys.argv[1:]:
        found = list(answers(path))
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
