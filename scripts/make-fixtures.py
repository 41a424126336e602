#!/usr/bin/env python3
"""Writes the reference fixtures that pith's tests compare against.

Reference implementations (none of them is a dependency of pith):
  - sentence-transformers: MiniLM embeddings
  - transformers (AutoTokenizer with gguf_file): the chat template
  - the gguf package: dequantisation of real tensors of the SmolLM2 GGUF and of
    synthetic blocks of the types that file does not contain

Run: scripts/reference-env (creates .venv with the packages), then
     .venv/bin/python scripts/make-fixtures.py
Outputs JSON files in core/tests/fixtures/.
"""
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("PITH_MODELS", ROOT / "models"))
OUT = ROOT / "core" / "tests" / "fixtures"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
os.environ["HF_HUB_OFFLINE"] = "1"

EMBED_TEXTS = [
    "Which NFL team represented the AFC at Super Bowl 50?",
    "The Denver Broncos defeated the Carolina Panthers 24–10 to earn their third Super Bowl title.",
    "hello",
    "",
    "A",
    "Café, naïve façade, jalapeño — résumé.",
    "東京は日本の首都です。",
    "Москва — столица России.",
    "مرحبا بالعالم",
    "😀 emoji 🎉 party 🚀",
    "def f(x):\n    return x ** 2  # square",
    "SELECT id, name FROM users WHERE age > 30 ORDER BY name;",
    "   leading and trailing spaces   ",
    "tabs\tand\nnewlines\r\nmixed",
    "1234567890 3.14159 -42 1e10",
    "The quick brown fox jumps over the lazy dog.",
    "Super Bowl 50 was played at Levi's Stadium in Santa Clara, California.",
    "Rev. Dr. Martin Luther King Jr. spoke at 8 a.m. in Washington, D.C.",
    "word " * 400,
    " ".join(f"token{i}" for i in range(600)),
    ("The game was broadcast by CBS. " * 60).strip(),
    "Ünïcödé ÄÖÜ ß ẞ ŉ ǅ",
    "<html><body>Markup &amp; entities</body></html>",
    "I can't won't shouldn't y'all",
]

TOKENIZER_TEXTS = EMBED_TEXTS[:18] + [
    "Hello world",
    " Hello world",
    "  two leading spaces",
    "trailing spaces   ",
    "a\n\nb\n\n\nc",
    "\t\tindented\n\t\t\tmore",
    "x = [1, 2, 3]; y = {'a': 1}",
    "fn main() { println!(\"{}\", 1 + 2); }",
    "#include <stdio.h>\nint main(void) { return 0; }",
    "12345678901234567890",
    "3.14 2,718 1/2 100% $5.99 #1",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are helpful.<|im_end|>",
    "<|endoftext|>",
    "The year 2016 and 50 Super Bowls",
    "ALL CAPS SENTENCE HERE",
    "camelCaseIdentifier snake_case_identifier kebab-case",
    "https://example.com/path?query=1&b=2",
    "email@example.com",
    "don't can't I'm you're they've we'll he'd",
    "Ελληνικά και 中文 και हिन्दी",
    "ﬁ ligature and ½ fraction and ① circled",
    "\u00a0non-breaking\u00a0space",
    "zero\u200bwidth",
    "a" * 100,
    "!!!???...,,,;;;",
    "line1\r\nline2\rline3",
    "The Broncos' defense, led by Von Miller, sacked Cam Newton seven times.",
    "日本語のテキストと English mixed",
    "Tabs\tin\tthe\tmiddle",
    "🏈🏟️👨‍👩‍👧",
    "   ",
    "\n",
]

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": "Who won Super Bowl 50?"},
    ],
    [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke about cats."},
    ],
]


def write(name, obj):
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def embeddings():
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(MODELS / "minilm"), device="cpu")
    vecs = model.encode(EMBED_TEXTS, normalize_embeddings=False, convert_to_numpy=True)
    write(
        "embeddings.json",
        {
            "model": "all-MiniLM-L6-v2 via sentence-transformers",
            "max_seq_length": model.max_seq_length,
            "items": [
                {"text": t, "embedding": [round(float(x), 7) for x in v]}
                for t, v in zip(EMBED_TEXTS, vecs)
            ],
        },
    )


def gguf_tokenizer():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(MODELS / "smollm2"), gguf_file=GGUF_FILE)
    # Token ids come from llama.cpp (make-llama-fixtures.py): transformers' GGUF
    # conversion drops SmolLM's digit pre-tokenizer, so it splits "½" differently.
    chats = [
        {"messages": m, "prompt": tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True)}
        for m in CONVERSATIONS
    ]
    write("smollm2_chat.json", {"reference": "transformers apply_chat_template", "items": chats})


def dequant():
    import gguf
    from gguf.quants import dequantize

    reader = gguf.GGUFReader(str(MODELS / "smollm2" / GGUF_FILE))
    seen = {}
    for t in reader.tensors:
        seen.setdefault(t.tensor_type.name, []).append(t)
    real = []
    for type_name, tensors in sorted(seen.items()):
        for t in tensors[:2]:
            values = dequantize(t.data, t.tensor_type).reshape(-1)
            idx = np.linspace(0, values.size - 1, 64).astype(int)
            real.append(
                {
                    "tensor": t.name,
                    "type": type_name,
                    "indices": idx.tolist(),
                    "values": [float(values[i]) for i in idx],
                    "sum": float(values.astype(np.float64).sum()),
                }
            )

    rng = np.random.default_rng(1234)
    synthetic = []
    for qtype in [
        gguf.GGMLQuantizationType.F16,
        gguf.GGMLQuantizationType.BF16,
        gguf.GGMLQuantizationType.Q4_0,
        gguf.GGMLQuantizationType.Q4_1,
        gguf.GGMLQuantizationType.Q5_0,
        gguf.GGMLQuantizationType.Q5_1,
        gguf.GGMLQuantizationType.Q8_0,
        gguf.GGMLQuantizationType.Q4_K,
        gguf.GGMLQuantizationType.Q5_K,
        gguf.GGMLQuantizationType.Q6_K,
    ]:
        block_len, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
        n_blocks = 4
        raw = rng.integers(0, 256, size=n_blocks * block_bytes, dtype=np.uint8)
        blocks = raw.reshape(n_blocks, block_bytes)
        # Keep the f16 scales finite and small so the comparison is about the layout.
        scale_offsets = {
            "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
            "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [block_bytes - 2],
        }.get(qtype.name, [])
        for b in blocks:
            for off in scale_offsets:
                b[off:off + 2] = np.frombuffer(np.float16(rng.uniform(0.001, 0.1)).tobytes(), dtype=np.uint8)
        if qtype.name in ("F16", "BF16"):
            vals = rng.uniform(-4, 4, size=n_blocks * 16).astype(np.float32)
            if qtype.name == "F16":
                raw = np.frombuffer(vals.astype(np.float16).tobytes(), dtype=np.uint8).copy()
            else:
                raw = np.frombuffer((vals.view(np.uint32) >> 16).astype(np.uint16).tobytes(), dtype=np.uint8).copy()
        else:
            raw = blocks.reshape(-1)
        values = dequantize(raw, qtype).reshape(-1)
        synthetic.append(
            {"type": qtype.name, "bytes": raw.tobytes().hex(), "values": [float(v) for v in values]}
        )
    write("dequant.json", {"reference": f"gguf {gguf.__version__ if hasattr(gguf, '__version__') else ''} dequantize", "real": real, "synthetic": synthetic})


if __name__ == "__main__":
    which = sys.argv[1:] or ["dequant", "tokenizer", "embeddings"]
    if "dequant" in which:
        dequant()
    if "tokenizer" in which:
        gguf_tokenizer()
    if "embeddings" in which:
        embeddings()


def f32_logits():
    """Log-probabilities of the dequantised (f32) model in transformers, for the prompts
    of make-llama-fixtures.py: the exact reference for pith's f32 arithmetic."""
    import torch
    from transformers import AutoModelForCausalLM

    llama = json.loads((OUT / "smollm2_llamacpp_logits.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(
        str(MODELS / "smollm2"), gguf_file=GGUF_FILE, attn_implementation="eager", torch_dtype=torch.float32
    )
    model.eval()
    prompts = []
    for p in llama["prompts"]:
        with torch.no_grad():
            logits = model(torch.tensor([p["tokens"]])).logits[0].double()
        lp = torch.log_softmax(logits, dim=-1)
        top = torch.topk(lp, 5, dim=-1)
        prompts.append({
            "tokens": p["tokens"],
            "positions": [
                {"top": [[int(i), round(float(v), 5)] for i, v in zip(ti, tv)]}
                for ti, tv in zip(top.indices, top.values)
            ],
        })
    write("smollm2_f32_logits.json", {"reference": "transformers (GGUF dequantised to f32, eager attention)", "prompts": prompts})


if __name__ == "__main__" and "f32_logits" in sys.argv[1:]:
    f32_logits()


def f32_greedy():
    """Greedy continuations (64 tokens) of the dequantised model in transformers."""
    import torch
    from transformers import AutoModelForCausalLM

    llama = json.loads((OUT / "smollm2_llamacpp_greedy.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(
        str(MODELS / "smollm2"), gguf_file=GGUF_FILE, attn_implementation="eager", torch_dtype=torch.float32
    )
    items = []
    for item in llama["items"]:
        ids = torch.tensor([item["tokens"]])
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=64, min_new_tokens=64, do_sample=False,
                                 repetition_penalty=1.0, eos_token_id=None, pad_token_id=0)
        items.append({"tokens": item["tokens"], "generated": out[0, ids.shape[1]:].tolist()})
    write("smollm2_f32_greedy.json", {"reference": "transformers greedy, 64 tokens (f32)", "items": items})


if __name__ == "__main__" and "f32_greedy" in sys.argv[1:]:
    f32_greedy()
