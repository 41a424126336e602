//! Random mutations of seed inputs, in the manner of libFuzzer's default mutators but
//! without coverage feedback.

use rand::Rng;
use rand::rngs::StdRng;

/// Values that sit at the edges of length and count fields.
const INTERESTING: [u64; 8] = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0xffff_ffff, u64::MAX];

/// A new input from `seeds`: one of them with 1 to 8 mutations, at most `max_len` bytes.
pub fn mutate(seeds: &[Vec<u8>], max_len: usize, rng: &mut StdRng) -> Vec<u8> {
    let mut data = seeds[rng.random_range(0..seeds.len())].clone();
    for _ in 0..rng.random_range(1..=8) {
        step(&mut data, seeds, rng);
    }
    data.truncate(max_len);
    data
}

fn step(data: &mut Vec<u8>, seeds: &[Vec<u8>], rng: &mut StdRng) {
    let len = data.len();
    let at = |rng: &mut StdRng| {
        if len == 0 {
            0
        } else {
            rng.random_range(0..len)
        }
    };
    match rng.random_range(0..7) {
        0 if len > 0 => {
            let i = at(rng);
            data[i] ^= 1 << rng.random_range(0..8);
        }
        1 if len > 0 => {
            let i = at(rng);
            data[i] = rng.random();
        }
        2 => {
            let i = at(rng);
            let n = rng.random_range(1..=16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            data.splice(i..i, bytes);
        }
        3 if len > 0 => {
            let i = at(rng);
            let end = (i + rng.random_range(1..=64)).min(len);
            data.drain(i..end);
        }
        4 if len > 0 => {
            let i = at(rng);
            let end = (i + rng.random_range(1..=64)).min(len);
            let copy = data[i..end].to_vec();
            let j = at(rng);
            data.splice(j..j, copy);
        }
        5 => {
            let width = [1, 2, 4, 8][rng.random_range(0..4)];
            let value = INTERESTING[rng.random_range(0..INTERESTING.len())].to_le_bytes();
            if len >= width {
                let i = rng.random_range(0..=len - width);
                data[i..i + width].copy_from_slice(&value[..width]);
            }
        }
        _ => {
            // Splice: this input's head with another seed's tail.
            let other = &seeds[rng.random_range(0..seeds.len())];
            let cut = at(rng);
            let from = if other.is_empty() {
                0
            } else {
                rng.random_range(0..other.len())
            };
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
        }
    }
}
