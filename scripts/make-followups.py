#!/usr/bin/env python3
"""Builds eval/followups: pairs of questions asked one after the other, the second
written as a person would follow up ("How long do they live in captivity?"), leaning on
the first for its subject. Each pair names a first question and an original question of
eval/squad-superbowl or eval/heldout-wiki (the follow-up's self-contained form: its gold
passage and answers are the follow-up's), and the entity the follow-up leaves out.

The follow-ups were written by hand by the pith team before anything was tuned on
them, as the held-out questions were. The script refuses a pair whose ids are unknown,
whose follow-up still names the entity it leaves out, or whose follow-up holds no word
that leans on the first question (a pronoun, "that", "there", "one", or an opening
"and"). Pair ids are numbered in order: even ids are for tuning, odd ids for checking.

Run: python3 scripts/make-followups.py
Writes eval/followups/pairs.jsonl.
"""
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "eval" / "followups"
SETS = {"squad-superbowl": ROOT / "eval" / "squad-superbowl", "heldout-wiki": ROOT / "eval" / "heldout-wiki"}

LEANING = {"it", "its", "they", "them", "their", "he", "his", "she", "her", "that", "there",
           "those", "this", "these", "one"}

# (set, first question id, original question id, follow-up, entity the follow-up leaves out)
PAIRS = [
    ("heldout-wiki", "heldout-000", "heldout-001", "What rating does it receive from the IUCN?", "aardvark"),
    ("heldout-wiki", "heldout-002", "heldout-003", "And from which language does the name come?", "aardvark"),
    ("heldout-wiki", "heldout-004", "heldout-005", "Which superorder do they form together?", "aardvark"),
    ("heldout-wiki", "heldout-010", "heldout-016", "How long do they live in captivity?", "aardvark"),
    ("heldout-wiki", "heldout-017", "heldout-019", "How many insects has one been recorded taking in one night?", "aardvark"),
    ("heldout-wiki", "heldout-023", "heldout-024", "At what age does a young one become sexually mature?", "aardvark"),
    ("heldout-wiki", "heldout-020", "heldout-021", "How long do they pause at the burrow entrance when leaving at night?", "aardvark"),
    ("heldout-wiki", "heldout-011", "heldout-013", "How many olfactory bulbs does its nose contain?", "aardvark"),
    ("heldout-wiki", "heldout-014", "heldout-015", "Which major habitat are they not present in?", "aardvark"),
    ("heldout-wiki", "heldout-027", "heldout-028", "And which US Navy squadron had that nickname?", "aardvark"),
    ("heldout-wiki", "heldout-038", "heldout-040", "And who designed its mission insignia?", "apollo"),
    ("heldout-wiki", "heldout-042", "heldout-043", "At what local time was it launched?", "apollo"),
    ("heldout-wiki", "heldout-029", "heldout-030", "Where did its astronauts land when they returned to Earth?", "apollo"),
    ("heldout-wiki", "heldout-046", "heldout-049", "What call sign did he use in place of Eagle after landing?", "armstrong"),
    ("heldout-wiki", "heldout-050", "heldout-051", "Who prepared his communion kit?", "aldrin"),
    ("heldout-wiki", "heldout-064", "heldout-065", "On what date did they exit quarantine?", "astronaut"),
    ("heldout-wiki", "heldout-066", "heldout-067", "How many foreign countries did their Giant Leap tour visit?", "astronaut"),
    ("heldout-wiki", "heldout-069", "heldout-038", "What was it named?", "apollo"),
    ("heldout-wiki", "heldout-071", "heldout-073", "From which Greek word is that word derived?", "anatomy"),
    ("heldout-wiki", "heldout-098", "heldout-099", "Who was the first there to identify the prostate gland?", "alexandria"),
    ("heldout-wiki", "heldout-107", "heldout-108", "Into how many regions is it divided for census purposes?", "aruba"),
    ("heldout-wiki", "heldout-109", "heldout-110", "Who are thought to have been its first inhabitants?", "aruba"),
    ("heldout-wiki", "heldout-112", "heldout-113", "What did Vespucci and Ojeda call it because of the tall natives?", "aruba"),
    ("heldout-wiki", "heldout-115", "heldout-116", "Who governed it at first under Dutch rule, before being appointed to New Amsterdam?", "aruba"),
    ("heldout-wiki", "heldout-125", "heldout-126", "What kind of language is it?", "papiamento"),
    ("heldout-wiki", "heldout-127", "heldout-128", "How many radio stations does it have?", "aruba"),
    ("heldout-wiki", "heldout-129", "heldout-130", "Where is its police force headquartered?", "aruba"),
    ("heldout-wiki", "heldout-119", "heldout-120", "On what date did it secede from the Netherlands Antilles?", "aruba"),
    ("heldout-wiki", "heldout-133", "heldout-136", "How many different nationalities lived there in 2005?", "aruba"),
    ("heldout-wiki", "heldout-141", "heldout-142", "Out of what are they often built today?", "abac"),
    ("heldout-wiki", "heldout-153", "heldout-155", "How many beads per decimal place does the standard one have?", "suanpan"),
    ("heldout-wiki", "heldout-169", "heldout-171", "How is it regarded today?", "abacus"),
    ("heldout-wiki", "heldout-164", "heldout-165", "How many beads were there in each one?", "nepōhualtzintzin"),
    ("heldout-wiki", "heldout-164", "heldout-166", "Which Mexican engineer rediscovered it?", "nepōhualtzintzin"),
    ("heldout-wiki", "heldout-173", "heldout-174", "Which braille code for mathematics do they use?", "blind"),
    ("heldout-wiki", "heldout-176", "heldout-177", "When quoted unqualified, across which spectrum is it usually averaged?", "albedo"),
    ("heldout-wiki", "heldout-179", "heldout-184", "What is its current average surface temperature?", "earth"),
    ("heldout-wiki", "heldout-190", "heldout-191", "Between which latitudes north does it vary?", "albedo"),
    ("heldout-wiki", "heldout-207", "heldout-208", "Through which subset of their population do they modify the properties of clouds?", "aerosol"),
    ("squad-superbowl", "56be4db0acb8001400a502ef", "56be4db0acb8001400a502ee", "And where did that game take place?", "super bowl"),
    ("squad-superbowl", "56be5333acb8001400a5030c", "56be5333acb8001400a5030d", "Which performers joined them?", "coldplay"),
    ("squad-superbowl", "56be5333acb8001400a5030a", "56be5333acb8001400a5030b", "What was the average cost for a 30 second commercial during it?", "super bowl"),
    ("squad-superbowl", "56be53b8acb8001400a50314", "56be53b8acb8001400a50315", "Which Super Bowl did he speak about?", "goodell"),
    ("squad-superbowl", "56be5523acb8001400a5032c", "56be5523acb8001400a5032f", "How much did it cost to build?", "levi"),
    ("squad-superbowl", "56be5523acb8001400a5032c", "56be5523acb8001400a5032e", "When did it open?", "levi"),
    ("squad-superbowl", "56beb4e43aeaaa14008c9265", "56beb4e43aeaaa14008c9269", "Who is their defensive coordinator?", "denver"),
    ("squad-superbowl", "56beb57b3aeaaa14008c9279", "56beb57b3aeaaa14008c927a", "How many picks did he throw in the season?", "manning"),
    ("squad-superbowl", "56beb3a03aeaaa14008c9248", "56beb3a03aeaaa14008c9249", "How many interceptions did he throw?", "newton"),
    ("squad-superbowl", "56be4e1facb8001400a502f6", "56be4e1facb8001400a502fa", "What year was that franchise founded?", "panthers"),
    ("squad-superbowl", "56be4eafacb8001400a50302", "56be4eafacb8001400a50303", "How many fumbles did he force?", "miller"),
    ("squad-superbowl", "56beab833aeaaa14008c91d2", "56beab833aeaaa14008c91d3", "How many solo tackles did he make?", "miller"),
    ("squad-superbowl", "56beb6f23aeaaa14008c92a2", "56beb6f23aeaaa14008c92a4", "How many times did they turn the ball over in that game?", "arizona"),
    ("squad-superbowl", "56beb4343aeaaa14008c925b", "56d6f3500d65d21400198290", "How many interceptions is it credited with in 2015?", "panthers"),
    ("squad-superbowl", "56be54bdacb8001400a50323", "56be54bdacb8001400a50325", "When was the most recent one hosted there?", "miami"),
]


def load(name):
    return {q["id"]: q for q in map(json.loads, (SETS[name] / "questions.jsonl").read_text().splitlines()) if q}


def refuse(i, why):
    sys.exit(f"pair {i}: {why}")


def main():
    questions = {name: load(name) for name in SETS}
    OUT.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (name, first, original, followup, entity) in enumerate(PAIRS):
        qs = questions[name]
        if first not in qs or original not in qs:
            refuse(i, f"unknown question id in {name}")
        if first == original:
            refuse(i, "the follow-up must ask something else")
        if entity.lower() in followup.lower():
            refuse(i, f"the follow-up still names {entity!r}")
        words = re.findall(r"[a-z]+", followup.lower())
        if not (LEANING & set(words) or words[:1] == ["and"]):
            refuse(i, "the follow-up does not lean on the first question")
        o = qs[original]
        lines.append(json.dumps({
            "id": f"followup-{i:03d}", "set": name, "first": first,
            "first_question": qs[first]["question"], "followup": followup,
            "original": original, "original_question": o["question"],
            "gold": o["gold"], "answers": o["answers"],
        }, ensure_ascii=False))
    (OUT / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    print(f"{len(lines)} pairs written to {OUT / 'pairs.jsonl'}")


if __name__ == "__main__":
    main()
