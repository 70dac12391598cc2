//! Where trials train: the CPU, or an NVIDIA GPU in a build with the `cuda` feature
//! (`device = "cuda"` / `"cuda:N"` in the experiment file, `--device` on the command line).

use std::fmt;
use std::process::Command;

use candle_core::Device;

/// The device an experiment asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The CPU (the default).
    #[default]
    Cpu,
    /// The GPU with this CUDA ordinal.
    Cuda(usize),
}

/// A device that cannot be used, and why.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DeviceError {
    /// Not `cpu`, `cuda` or `cuda:N`.
    #[error("unknown device \"{0}\"; expected cpu, cuda or cuda:N (N = 0, 1, …)")]
    Unknown(String),
    /// This binary has no CUDA backend.
    #[error(
        "{0} asked for, but this mtl was built without the cuda feature; build it with scripts/build-cuda.sh \
         (see docs/gpu.md), or use device = \"cpu\""
    )]
    NotBuilt(DeviceSpec),
    /// The CUDA backend could not open the device.
    #[error("{device} cannot be used: {reason}")]
    Unavailable {
        /// The device asked for.
        device: DeviceSpec,
        /// candle's (CUDA's) reason, on one line.
        reason: String,
    },
}

impl DeviceSpec {
    /// Reads `cpu`, `cuda` (= `cuda:0`) or `cuda:N`.
    pub fn parse(text: &str) -> Result<DeviceSpec, DeviceError> {
        let unknown = || DeviceError::Unknown(text.to_string());
        match text.trim() {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            other => match other.strip_prefix("cuda:") {
                Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                    n.parse().map(DeviceSpec::Cuda).map_err(|_| unknown())
                }
                _ => Err(unknown()),
            },
        }
    }

    /// Opens the device. A GPU gets a stream of its own at each call, so trials that run
    /// at once on one GPU (`--jobs N`) do not wait for each other's kernels.
    pub fn open(self) -> Result<Device, DeviceError> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(_) if !cfg!(feature = "cuda") => Err(DeviceError::NotBuilt(self)),
            DeviceSpec::Cuda(ordinal) => Device::new_cuda_with_stream(ordinal)
                .map_err(|e| DeviceError::Unavailable { device: self, reason: one_line(&e) }),
        }
    }

    /// What runs record as their device: `cpu`, or `cuda:N (name, driver …, CUDA …)` as
    /// `nvidia-smi` reports them (just `cuda:N` where it cannot).
    pub fn describe(self) -> String {
        match self {
            DeviceSpec::Cpu => "cpu".to_string(),
            DeviceSpec::Cuda(ordinal) => match gpu_details(ordinal) {
                Some(details) => format!("{self} ({details})"),
                None => self.to_string(),
            },
        }
    }
}

impl std::str::FromStr for DeviceSpec {
    type Err = DeviceError;

    fn from_str(text: &str) -> Result<DeviceSpec, DeviceError> {
        DeviceSpec::parse(text)
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(ordinal) => write!(f, "cuda:{ordinal}"),
        }
    }
}

/// candle's error without its backtrace, on one line.
fn one_line(error: &candle_core::Error) -> String {
    let text = match error {
        candle_core::Error::WithBacktrace { inner, .. } => inner.to_string(),
        other => other.to_string(),
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// "NVIDIA H200, driver 580.159.04, CUDA 13.0" for the GPU `ordinal`, from `nvidia-smi`.
fn gpu_details(ordinal: usize) -> Option<String> {
    let query = |args: &[&str]| {
        let output = Command::new("nvidia-smi").args(args).output().ok()?;
        output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    let id = ordinal.to_string();
    let line = query(&["--query-gpu=name,driver_version", "--format=csv,noheader", "-i", &id])?;
    let (name, driver) = line.split_once(", ")?;
    // The CUDA version the driver supports is in the banner of the plain listing.
    let banner = query(&[])?;
    let cuda = banner.split("CUDA Version:").nth(1).and_then(|rest| rest.split_whitespace().next());
    Some(match cuda {
        Some(cuda) => format!("{name}, driver {driver}, CUDA {cuda}"),
        None => format!("{name}, driver {driver}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_cuda_and_an_ordinal_and_refuses_the_rest() {
        assert_eq!(DeviceSpec::parse("cpu"), Ok(DeviceSpec::Cpu));
        assert_eq!(DeviceSpec::parse("cuda"), Ok(DeviceSpec::Cuda(0)));
        assert_eq!(DeviceSpec::parse("cuda:3"), Ok(DeviceSpec::Cuda(3)));
        for bad in ["", "CUDA", "cuda:", "cuda:-1", "cuda:x", "cuda:1.5", "metal", "cuda:99999999999999999999"] {
            let error = DeviceSpec::parse(bad).expect_err(bad);
            assert!(error.to_string().contains("expected cpu, cuda or cuda:N"), "{bad}: {error}");
        }
        assert_eq!(DeviceSpec::Cuda(2).to_string(), "cuda:2");
        assert_eq!(DeviceSpec::Cpu.describe(), "cpu");
    }

    #[test]
    fn the_cpu_always_opens_and_a_gpu_without_the_feature_says_how_to_get_one() {
        assert!(DeviceSpec::Cpu.open().expect("cpu").is_cpu());
        if !cfg!(feature = "cuda") {
            let error = DeviceSpec::Cuda(0).open().expect_err("no cuda backend").to_string();
            assert!(error.contains("built without the cuda feature") && error.contains("build-cuda.sh"), "{error}");
        }
    }
}
