//! Build script of the kernel programs.
//!
//! * Declares `bpf_target_arch` (aya-build sets it when it drives the build;
//!   a direct `cargo xtask build-ebpf` gets it from the host here).
//! * Rebuilds when the `bpf-linker` binary changes: cargo cannot see that
//!   linker as a dependency on its own.
use which::which;

fn main() {
    if let Err(err) = aya_build::emit_bpf_target_arch_cfg() {
        println!("cargo:warning=bpf_target_arch: {err}");
    }
    match which("bpf-linker") {
        Ok(path) => println!("cargo:rerun-if-changed={}", path.display()),
        Err(err) => println!("cargo:warning=bpf-linker not found on PATH: {err}"),
    }
}
