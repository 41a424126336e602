//! GGUF reading, dequantisation and tokenizers against the reference fixtures.

mod common;

use pith_core::model::gguf::Gguf;
use pith_core::model::quant::GgmlType;
use pith_core::model::tokenizer;

fn type_by_name(name: &str) -> GgmlType {
    (0..31)
        .filter_map(GgmlType::from_id)
        .find(|t| GgmlType::name_of(type_id(*t)) == name)
        .unwrap_or_else(|| panic!("unknown type {name}"))
}

fn type_id(t: GgmlType) -> u32 {
    (0..31)
        .find(|&id| GgmlType::from_id(id) == Some(t))
        .unwrap()
}

fn close(a: f32, b: f64) -> bool {
    (f64::from(a) - b).abs() <= 1e-6 * (1.0 + b.abs())
}

#[test]
fn real_tensors_dequantise_like_the_gguf_package() {
    let gguf = Gguf::open(common::gguf_path()).unwrap();
    let fixture = common::fixture("dequant.json");
    let real = fixture["real"].as_array().unwrap();
    let types: std::collections::BTreeSet<&str> =
        real.iter().map(|r| r["type"].as_str().unwrap()).collect();
    assert!(types.contains("Q4_1") && types.contains("Q8_0") && types.contains("F32"));
    for r in real {
        let name = r["tensor"].as_str().unwrap();
        let (values, _) = gguf.dequantize(name).unwrap();
        for (i, want) in r["indices"]
            .as_array()
            .unwrap()
            .iter()
            .zip(r["values"].as_array().unwrap())
        {
            let got = values[i.as_u64().unwrap() as usize];
            assert!(
                close(got, want.as_f64().unwrap()),
                "{name}[{i}]: {got} vs {want}"
            );
        }
        let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
        let want = r["sum"].as_f64().unwrap();
        assert!(
            (sum - want).abs() <= 1e-3 * (1.0 + want.abs()),
            "{name}: sum {sum} vs {want}"
        );
    }
}

#[test]
fn synthetic_blocks_of_every_type_dequantise_like_the_gguf_package() {
    let fixture = common::fixture("dequant.json");
    for s in fixture["synthetic"].as_array().unwrap() {
        let name = s["type"].as_str().unwrap();
        let hex = s["bytes"].as_str().unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let got = type_by_name(name).dequantize(&bytes);
        let want = s["values"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{name}");
        for (j, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(close(*g, w.as_f64().unwrap()), "{name}[{j}]: {g} vs {w}");
        }
    }
}

#[test]
fn smollm2_header_matches_the_design() {
    let gguf = Gguf::open(common::gguf_path()).unwrap();
    assert_eq!(gguf.header.version, 3);
    assert_eq!(gguf.str("general.architecture").unwrap(), "llama");
    assert_eq!(gguf.usize("llama.block_count").unwrap(), 30);
    assert_eq!(gguf.usize("llama.embedding_length").unwrap(), 576);
    assert_eq!(gguf.usize("llama.attention.head_count").unwrap(), 9);
    assert_eq!(gguf.usize("llama.attention.head_count_kv").unwrap(), 3);
}

#[test]
fn gguf_tokenizer_matches_the_reference_ids() {
    let gguf = Gguf::open(common::gguf_path()).unwrap();
    let tok = tokenizer::from_gguf(&gguf).unwrap();
    let fixture = common::fixture("smollm2_llamacpp_tokens.json");
    let items = fixture["items"].as_array().unwrap();
    assert!(items.len() >= 50);
    for item in items {
        let text = item["text"].as_str().unwrap();
        let want: Vec<u32> = item["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let got = tok.encode(text, false).unwrap().get_ids().to_vec();
        assert_eq!(got, want, "ids differ for {text:?}");
        assert_eq!(
            tok.decode(&got, false).unwrap(),
            text,
            "round trip of {text:?}"
        );
    }
}

#[test]
fn truncated_model_file_is_a_clear_error() {
    let bytes = std::fs::read(common::gguf_path()).unwrap();
    let dir = std::env::temp_dir().join(format!("pith-trunc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for cut in [10, 1000, bytes.len() / 2, bytes.len() - 1] {
        let path = dir.join("cut.gguf");
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let err = Gguf::open(&path).unwrap_err().to_string();
        assert!(
            err.contains("cut.gguf") && (err.contains("truncated") || err.contains("does not fit")),
            "{err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
