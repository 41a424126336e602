#!/usr/bin/env python3
"""Writes the seed corpus under fuzz/corpus/<target>/: small, varied, valid inputs
(and a few broken ones) for libFuzzer to mutate. Run from anywhere; needs the models
(scripts/setup) only for the truncated real-file seeds, which it skips without them."""

import json
import struct
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
MODELS = FUZZ.parent / "models"


def write(target, name, data):
    d = FUZZ / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


# --- GGUF ------------------------------------------------------------------------

def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


# Metadata value types of the GGUF spec.
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
          BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}


def gvalue(ty, v):
    if ty == STR:
        return gstr(v)
    if ty == ARR:
        item_ty, items = v
        return struct.pack("<IQ", item_ty, len(items)) + b"".join(gvalue(item_ty, i) for i in items)
    return struct.pack(SCALAR[ty], v)


def gguf(kvs, tensors, version=3, alignment=32):
    """kvs: [(key, type, value)]; tensors: [(name, dims, type_id, data bytes)]."""
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for key, ty, v in kvs:
        head += gstr(key) + struct.pack("<I", ty) + gvalue(ty, v)
    data = b""
    infos = b""
    for name, dims, type_id, raw in tensors:
        data += b"\0" * (-len(data) % alignment)
        infos += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", type_id, len(data))
        data += raw
    head += infos
    head += b"\0" * (-len(head) % alignment)
    return head + data


def pattern(n, seed):
    return bytes((i * 37 + seed * 11) % 251 for i in range(n))


# (type id, elements per block, bytes per block) of every type pith reads, and Q2_K,
# which it does not.
TYPES = {"f32": (0, 1, 4), "f16": (1, 1, 2), "bf16": (30, 1, 2), "q4_0": (2, 32, 18),
         "q4_1": (3, 32, 20), "q5_0": (6, 32, 22), "q5_1": (7, 32, 24), "q8_0": (8, 32, 34),
         "q4_k": (12, 256, 144), "q5_k": (13, 256, 176), "q6_k": (14, 256, 210),
         "q2_k": (10, 256, 84)}

all_types = [
    (name, [block] if block > 1 else [2, 2], tid, pattern(size if block > 1 else 4 * size, tid))
    for name, (tid, block, size) in TYPES.items()
]
every_value = [
    ("general.architecture", STR, "llama"),
    ("u8", U8, 7), ("i8", I8, -7), ("u16", U16, 700), ("i16", I16, -700),
    ("u32", U32, 70000), ("i32", I32, -70000), ("f32", F32, 1.5), ("bool", BOOL, True),
    ("u64", U64, 1 << 40), ("i64", I64, -(1 << 40)), ("f64", F64, 2.25),
    ("arr.u16", ARR, (U16, [1, 2, 3])),
    ("arr.str", ARR, (STR, ["a", "bc", ""])),
    ("arr.arr", ARR, (ARR, [(U8, [1, 2]), (U8, [])])),
]
tokens = ["a", "b", "c", "ab", "abc", "Ġ", "Ġa", "1", "2", "<|im_start|>", "<|im_end|>"]
tokenizer = [
    ("tokenizer.ggml.model", STR, "gpt2"),
    ("tokenizer.ggml.pre", STR, "smollm"),
    ("tokenizer.ggml.tokens", ARR, (STR, tokens)),
    ("tokenizer.ggml.token_type", ARR, (I32, [1] * 9 + [3, 3])),
    ("tokenizer.ggml.merges", ARR, (STR, ["a b", "ab c", "Ġ a"])),
    ("tokenizer.ggml.eos_token_id", U32, 10),
]
write("gguf", "every-type", gguf(every_value, all_types))
write("gguf", "tokenizer", gguf(tokenizer, [("t", [4], 0, pattern(16, 1))]))
write("gguf", "tokenizer-llama3",
      gguf([(k, t, "llama-bpe" if k == "tokenizer.ggml.pre" else v) for k, t, v in tokenizer], []))
write("gguf", "v2-aligned-64",
      gguf([("general.alignment", U32, 64)], all_types[3:6], version=2, alignment=64))
write("gguf", "empty", gguf([], []))
real = MODELS / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
if real.exists():
    with real.open("rb") as f:
        head = f.read(4096)
    for n in (64, 512, 4096):
        write("gguf", f"smollm2-first-{n}", head[:n])

# --- safetensors -------------------------------------------------------------------


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, data bytes)]."""
    header, data = {}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


write("safetensors", "every-dtype", safetensors([
    ("embeddings.weight", "F32", [2, 2], struct.pack("<4f", 1, -2, 0.5, 3e38)),
    ("half", "F16", [3], pattern(6, 1)),
    ("brain", "BF16", [1, 2], pattern(4, 2)),
    ("ids", "I64", [2], struct.pack("<2q", 1, -1)),
    ("scalar", "F32", [], struct.pack("<f", 7)),
    ("empty", "F32", [0, 3], b""),
], {"format": "pt"}))
write("safetensors", "empty", safetensors([]))
minilm = MODELS / "minilm" / "model.safetensors"
if minilm.exists():
    with minilm.open("rb") as f:
        write("safetensors", "minilm-first-1024", f.read(1024))

# --- text ----------------------------------------------------------------------------

texts = {
    "plain": "The Eiffel Tower is in Paris. It was built in 1889! Was it? Yes.",
    "abbreviations": "Rev. Jesse Jackson met Dr. J. R. R. Tolkien at 8 a.m. in the U.S. Army base, e.g. St. Mary's.",
    "decimals-urls": "It cost 3.5 dollars at example.com... really?! (See fig. 2.) \"Quoted.\" 'Single.'",
    "paragraphs": "First paragraph without stop\n\n  \n\nSecond one.\r\n\r\nThird\n\tindented\n",
    "unicode": "Ça coûte 5 €. Größe: naïve café — “quoted.” ’Tis so. 日本語の文。한국어 문장. Ελληνικά; عربى؟",
    "emoji-combining": "👩‍👩‍👧 family. e\u0301 a\u0308 \u200b zero\u200dwidth. 🇫🇷 flag.",
    "chat": "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nWhat is pith?<|im_end|>\n<|im_start|>assistant\n",
    "whitespace-runs": "   \t\t  word    \u00a0\u00a0 \u3000 other\u2003word.\x0b\x0c  \n\n\n   end   ",
    "digits": "1234567890 3.14159 1,000,000 0x1F 1e-9 12345678901234567890",
    "control": "nul\x00byte bell\x07 esc\x1b[0m del\x7f \ufffd replacement \ufeffbom",
    "code": "fn main() { println!(\"{}\", x.y()); } // done. if (a && b) return;",
    "long-word": "a" * 300 + ". " + "b " * 100,
}
for name, t in texts.items():
    write("tokenizer", name, t)
    write("chunk", name, b"\x06\x02" + t.encode())
invalid = b"valid then \xff\xfe invalid \xc3\x28 and \xe2\x82 cut \xf0\x9f\x98"
write("tokenizer", "invalid-utf8", invalid)
write("chunk", "invalid-utf8", b"\x03\x01" + invalid)
write("chunk", "tiny-chunks", b"\x01\x00" + texts["unicode"].encode())

# --- C strings -------------------------------------------------------------------------

# A flags byte (bit i: string i is NULL), then models_dir, db_path, embedder_dir,
# generator_path, device, and three free strings, NUL-separated.
fields = [b"models", b"pith.db", b"models/minilm", b"model.gguf", b"cpu", b"query", b"hybrid", b"{}"]
write("c_strings", "defaults", b"\x0c" + b"\0".join(fields))
write("c_strings", "all-null", b"\xff")
write("c_strings", "invalid-utf8", b"\x00" + b"\0".join([b"m\xff", b"db\xc3", b"", b"", b"gp\xe2u", b"\xf0\x9f", b"vector", b"[1]"]))
write("c_strings", "bad-device", b"\x00" + b"\0".join(fields[:4] + [b"tpu", b"q", b"bm25", b"not json"]))

# --- documents -----------------------------------------------------------------------

# The fuzzers also start from core/tests/fixtures/documents (scripts/fuzz, fuzz-smoke),
# which are not copied here.

def tiny_pdf(pages):
    """An uncompressed PDF, one line of Helvetica per page, with a correct xref table."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", None,
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                       b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % len(objects))
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


write("pdf", "tiny-two-pages", tiny_pdf(["Page one text.", "Page two text."]))


def tiny_docx(body):
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml",
                   '<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
                   f'wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>')
    return buf.getvalue()


write("docx", "tiny-table", tiny_docx(
    '<w:p><w:pPr><w:outlineLvl w:val="0"/></w:pPr><w:r><w:t>Title</w:t></w:r></w:p>'
    '<w:tbl><w:tr><w:tc><w:p><w:r><w:t>a &amp; b</w:t></w:r></w:p></w:tc>'
    '<w:tc><w:p><w:r><w:t>c</w:t></w:r></w:p></w:tc></w:tr></w:tbl>'))
write("html", "tiny", "<!DOCTYPE html><html><head><style>p{}</style></head><body><nav>menu</nav>"
      "<main><h1>Title</h1><p>One <b>bold</b> word.<table><tr><td>a<td>b</table></main></body></html>")
write("html", "unclosed", "<html><body>" + "<div><p>text " * 50 + "<script>if (a < b) {}</script>")
