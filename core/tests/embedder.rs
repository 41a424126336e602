//! The Burn MiniLM embedder against sentence-transformers, on both devices.

mod common;

use pith_core::device::{self, DeviceChoice};
use pith_core::model::bert::Embedder;

fn check_against_reference(choice: DeviceChoice) {
    let dev = device::open(choice);
    assert!(
        dev.warning.is_none() || choice == DeviceChoice::Gpu,
        "{:?}",
        dev.warning
    );
    let embedder = Embedder::load(&common::embedder_dir(), &dev.device).unwrap();
    assert_eq!(embedder.dim(), 384);
    let fixture = common::fixture("embeddings.json");
    let items = fixture["items"].as_array().unwrap();
    assert!(items.len() >= 20);
    let texts: Vec<&str> = items.iter().map(|i| i["text"].as_str().unwrap()).collect();
    let got = embedder.embed(&texts).unwrap();
    let mut worst = 1.0f64;
    for (item, g) in items.iter().zip(&got) {
        let want: Vec<f64> = item["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let dot: f64 = g.iter().zip(&want).map(|(a, b)| f64::from(*a) * b).sum();
        let norm_w = want.iter().map(|x| x * x).sum::<f64>().sqrt();
        let norm_g = g
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        let cos = dot / (norm_w * norm_g);
        worst = worst.min(cos);
        assert!(
            cos >= 0.9999,
            "{:?}: cosine {cos} on {:?}",
            item["text"],
            dev.kind
        );
        assert!((norm_g - 1.0).abs() < 1e-4, "not unit length: {norm_g}");
    }
    eprintln!(
        "{:?}: worst cosine {worst:.6} over {} texts",
        dev.kind,
        items.len()
    );
}

#[test]
fn embeddings_match_sentence_transformers_on_cpu() {
    check_against_reference(DeviceChoice::Cpu);
}

#[test]
fn embeddings_match_sentence_transformers_on_wgpu() {
    check_against_reference(DeviceChoice::Gpu);
}
