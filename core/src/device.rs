//! Choosing where models run: the wgpu device by default, the flex CPU device as fallback
//! (and where the only wgpu adapter is a software rasterizer, which runs the models far
//! slower than the CPU device does).

use burn::tensor::Device;
#[cfg(feature = "gpu")]
use burn::tensor::{DeviceKind, Tensor};
#[cfg(feature = "gpu")]
use cubecl_environment::stream::{StreamPolicy, set_policy};

use crate::error::{Error, Result};
#[cfg(feature = "gpu")]
use crate::model::on_a_card;

/// The device a user asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// A graphics card through wgpu when there is one; the CPU otherwise, and also when
    /// wgpu's only adapter is a software rasterizer such as Mesa's lavapipe (there a
    /// first ask took 150-184 s, against seconds on the CPU device).
    #[default]
    Auto,
    /// wgpu (Vulkan, Metal, DX12, GL) on any adapter, software ones included, falling
    /// back to the CPU when no adapter exists.
    Gpu,
    /// Burn's pure-Rust flex CPU device.
    Cpu,
}

impl std::str::FromStr for DeviceChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Self::Auto),
            "gpu" | "wgpu" => Ok(Self::Gpu),
            "cpu" | "flex" => Ok(Self::Cpu),
            _ => Err(Error::InvalidArgument(format!(
                "device {s:?} (use auto, gpu or cpu)"
            ))),
        }
    }
}

/// A device that has been opened, and what it turned out to be.
#[derive(Debug, Clone)]
pub struct OpenDevice {
    pub device: Device,
    /// What runs: `Gpu` when a wgpu adapter answered, `Cpu` otherwise (never `Auto`).
    pub kind: DeviceChoice,
    /// Set when the GPU was asked for but the CPU is used.
    pub warning: Option<String>,
}

/// Opens the device asked for. A GPU request with no usable adapter falls back to the
/// CPU with a warning instead of failing; `Auto` falls back quietly.
pub fn open(choice: DeviceChoice) -> OpenDevice {
    let cpu = OpenDevice {
        device: Device::flex(),
        kind: DeviceChoice::Cpu,
        warning: None,
    };
    match choice {
        DeviceChoice::Cpu => cpu,
        DeviceChoice::Auto => match probe_wgpu() {
            Ok(device) if on_a_card(&device) => OpenDevice {
                device,
                kind: DeviceChoice::Gpu,
                warning: None,
            },
            _ => cpu,
        },
        DeviceChoice::Gpu => match probe_wgpu() {
            Ok(device) => OpenDevice {
                device,
                kind: DeviceChoice::Gpu,
                warning: None,
            },
            Err(reason) => OpenDevice {
                warning: Some(format!(
                    "no usable GPU adapter ({reason}); running on the CPU"
                )),
                ..cpu
            },
        },
    }
}

/// wgpu initialises lazily and panics when it finds no adapter, so the first tensor
/// operation runs behind a panic boundary, once per process.
#[cfg(feature = "gpu")]
fn probe_wgpu() -> std::result::Result<Device, String> {
    static PROBE: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    let device = Device::wgpu(DeviceKind::DefaultDevice);
    let outcome = PROBE.get_or_init(|| {
        // CubeCL gives each OS thread a stream of its own, and each stream its own
        // memory pools, kept for the life of the process. Callers start threads
        // freely, and so does pith (the embedder runs on a scoped thread in every
        // pruned ask): on lavapipe that grew the resident set by about 7 MiB an ask.
        // One stream keeps one set of pools; wgpu submits to a single queue anyway.
        // The policy is process-wide and must be set before the first kernel.
        set_policy(StreamPolicy::Single);
        let d = device.clone();
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let result = std::panic::catch_unwind(move || {
            Tensor::<1>::from_floats([1.0, 2.0], &d)
                .sum()
                .into_scalar::<f32>()
        });
        std::panic::set_hook(hook);
        match result {
            Ok(3.0) => Ok(()),
            Ok(v) => Err(format!("a test sum gave {v}")),
            Err(panic) => Err(panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "wgpu initialisation failed".into())),
        }
    });
    outcome.clone().map(|()| device)
}

/// Built without the `gpu` feature (a library for apps that run on the CPU only), pith
/// has no wgpu device to open. scripts/wheel and scripts/test-python look for this
/// message to tell the CPU-only library from the other.
#[cfg(not(feature = "gpu"))]
fn probe_wgpu() -> std::result::Result<Device, String> {
    Err("this build of pith has no GPU support: it was built without the `gpu` feature".into())
}

/// Whether `device` is a graphics card: never, without the `gpu` feature.
#[cfg(not(feature = "gpu"))]
fn on_a_card(_: &Device) -> bool {
    false
}

/// Runs `work` on a thread of the CPU pool (rayon's global one) when `device` is the
/// CPU; elsewhere, or already on a pool thread, where it is.
///
/// The CPU device splits each matrix product over the pool. Started from outside it,
/// every product is handed to pool threads that fall asleep in the gaps between
/// products and must be woken, while the calling thread waits; started on a pool
/// thread, that thread takes its own share and the others stay warm. Measured on the
/// generator (2 threads, A/B in one session): decode 89 -> 123 tokens/s, prefill
/// 384 -> 438.
pub fn on_cpu_pool<R: Send>(device: &Device, work: impl FnOnce() -> R + Send) -> R {
    if *device == Device::flex() && rayon::current_thread_index().is_none() {
        rayon::scope(|_| work())
    } else {
        work()
    }
}
