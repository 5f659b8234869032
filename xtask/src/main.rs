//! Project tasks: `cargo xtask <task>`.
//!
//! * `setup`      installs every prerequisite on a fresh Debian machine (idempotent)
//! * `build-ebpf` builds only the kernel programs
//! * `build`      builds the kernel programs and user space
//! * `run`        builds, then runs ai-forensics as root; with no arguments it
//!   traces the bundled PyTorch training and prediction runs (the main job)
//! * `test`       the whole test suite: unit tests, then the root-only
//!   integration tests against the real kernel
//! * `bench`      overhead and throughput against strace, perf trace,
//!   bpftrace and bcc; writes BENCHMARKS.md and benchmarks.json
//! * `fuzz`       runs the cargo-fuzz targets for a bounded time
//! * `soak`       a long mixed workload under tracing: RSS, CPU and loss over time
mod bench;
mod build;
mod fuzz;
mod lint;
mod llm_agent;
mod services;
mod setup;
mod soak;
mod test;
mod util;
mod vm;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "xtask", about = "ai-forensics project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install the prerequisites (LLVM 22, rust-src, bpf-linker, strace, python3-torch...).
    Setup {
        /// Only report what is missing; exit 1 if anything is.
        #[arg(long)]
        check: bool,
        /// Also install the LLM agent example (node-llama-cpp and the
        /// SmolLM2-135M GGUF, about 130 MB) into examples/llm-agent.
        #[arg(long)]
        llm_agent: bool,
    },
    /// Build the eBPF programs only.
    BuildEbpf(build::EbpfOptions),
    /// Build the eBPF programs and the user-space binary.
    Build {
        /// Release build.
        #[arg(long)]
        release: bool,
    },
    /// Build, then run ai-forensics as root. Without arguments: trace the
    /// bundled PyTorch training and prediction runs.
    Run {
        /// Release build.
        #[arg(long)]
        release: bool,
        /// Arguments for ai-forensics (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Check formatting and run clippy (user space and the eBPF crate).
    Lint,
    /// Benchmarks: per-syscall cost, untraced tax, throughput and loss, PyTorch
    /// overhead and agent cost, against strace, perf trace, bpftrace and bcc.
    Bench(bench::Options),
    /// Rebuild BENCHMARKS.md from a benchmarks.json (e.g. after editing docs/performance.md).
    BenchReport {
        /// The results file.
        #[arg(default_value = "benchmarks.json")]
        json: std::path::PathBuf,
    },
    /// Fuzz the parsers of untrusted input (records, rules, verdicts, config)
    /// with cargo-fuzz, each for a bounded time.
    Fuzz(fuzz::Options),
    /// A long mixed workload under tracing with the store: RSS, CPU and loss
    /// over time (docs/soak.md).
    Soak(soak::Options),
    /// Run the whole test suite (unit tests, then root integration tests).
    Test {
        /// Only the integration tests whose name contains this.
        filter: Option<String>,
        /// Skip the unit tests.
        #[arg(long)]
        integration_only: bool,
        /// Run the integration tests under another kernel in a virtme-ng VM
        /// instead (6.1, 6.12 or all; a documented subset unless --full).
        #[arg(long, value_name = "KERNEL")]
        kernel: Option<String>,
        /// With --kernel: every integration test, not the subset.
        #[arg(long, requires = "kernel")]
        full: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.task {
        Task::Setup { check, llm_agent } => {
            setup::run(check)?;
            if llm_agent && !check {
                llm_agent::ensure()?;
            }
            Ok(())
        }
        Task::BuildEbpf(opts) => build::ebpf(&opts),
        Task::Build { release } => {
            setup::ensure()?;
            build::ebpf(&build::EbpfOptions {
                release,
                target: build::DEFAULT_TARGET.into(),
            })?;
            build::user(release)
        }
        Task::Run { release, args } => {
            setup::ensure()?;
            build::user(release)?;
            if args.is_empty() {
                build::demo(release)
            } else {
                build::run_binary(release, &args)
            }
        }
        Task::Lint => {
            setup::ensure()?;
            lint::run()
        }
        Task::Bench(o) => bench::run(&o),
        Task::BenchReport { json } => bench::render(&json),
        Task::Fuzz(o) => {
            setup::ensure()?;
            fuzz::run(&o)
        }
        Task::Soak(o) => {
            setup::ensure()?;
            soak::run(&o)
        }
        Task::Test {
            filter,
            integration_only,
            kernel,
            full,
        } => {
            setup::ensure()?;
            services::ensure()?;
            llm_agent::ensure()?;
            test::run(filter.as_deref(), integration_only, kernel.as_deref(), full)
        }
    }
}
