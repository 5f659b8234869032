//! `cargo xtask test --kernel 6.1|6.12|all`: the integration tests under
//! other kernels. Debian's kernel package is downloaded once (cached under
//! `target/kernels`), booted with virtme-ng on this machine's own
//! filesystem (emulated: guests under /dev/kvm hang on this machine kind),
//! and the same root test binaries the host runs are run inside; each
//! test's result comes back on the host.
use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::util::{self, cmd, output, root, succeeds};

/// The kernels of the matrix: short name, Debian package, release.
const KERNELS: &[(&str, &str, &str)] = &[
    ("6.1", "linux-image-6.1.0-47-amd64", "6.1.0-47-amd64"),
    (
        "6.12",
        "linux-image-6.12.111+deb12-amd64",
        "6.12.111+deb12-amd64",
    ),
];

/// The subset run under emulation (`--full` runs every test): loading and
/// attaching, exact counts (at exit and at entry), the session record's
/// kernel features, the process tree, loss accounting, enforcement (the
/// guests boot with the BPF LSM active, so deny rules are refused there),
/// TLS plaintext capture (uprobes on a libssl found at run time).
const SUBSET: &[(&str, &[&str])] = &[
    (
        "foundation",
        &[
            "getppid_count_is_exact",
            "read_count_is_exact",
            "count_mode_at_exit_is_exact_for_calls_that_do_not_return_normally",
            "first_syscall_of_the_command_is_recorded",
            "doctor_probes_the_kernel_and_the_session_record_carries_it",
        ],
    ),
    (
        "tree",
        &[
            "every_process_and_thread_of_the_tree_exactly_and_nothing_else",
            "an_orphaned_grandchild_stays_traced",
        ],
    ),
    (
        "events",
        &["loss_is_counted_exactly_and_marked_in_the_stream"],
    ),
    (
        "tls",
        &["a_private_copy_of_libssl_loaded_at_run_time_is_found_and_watched"],
    ),
    (
        "policy",
        &[
            "the_kernel_kills_a_shell_before_it_runs_a_command",
            "verdicts_freeze_resume_and_kill_the_whole_tree",
        ],
    ),
];

/// virtme-ng, QEMU and a static busybox (virtme-ng's init; it replaces the
/// dynamic `busybox` that setup installs, and gives the same applets).
fn ensure_tools() -> anyhow::Result<()> {
    let mut pkgs = Vec::new();
    if !succeeds(cmd("sh").args(["-c", "command -v qemu-system-x86_64"])) {
        pkgs.push("qemu-system-x86");
    }
    for p in ["kmod", "busybox-static"] {
        if output(cmd("dpkg-query").args(["-W", "-f=${Status}", p]))
            .is_none_or(|s| !s.contains("install ok installed"))
        {
            pkgs.push(p);
        }
    }
    if !pkgs.is_empty() {
        println!("installing {}", pkgs.join(" "));
        util::run(
            cmd("apt-get")
                .args(["install", "-y", "--no-install-recommends"])
                .args(&pkgs)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }
    if !succeeds(cmd("sh").args(["-c", "command -v vng"])) {
        println!("installing virtme-ng");
        util::run(cmd("python3").args(["-m", "pip", "install", "-q", "virtme-ng"]))?;
        // pyenv puts new console scripts on PATH only after a rehash.
        let _ = succeeds(cmd("sh").args(["-c", "command -v pyenv && pyenv rehash"]));
    }
    Ok(())
}

/// The kernel image of `release`, unpacked from its package (cached), with
/// its modules where virtme-ng looks for them.
fn kernel(package: &str, release: &str) -> anyhow::Result<PathBuf> {
    let dir = root().join("target").join("kernels");
    let unpacked = dir.join(release);
    let image = unpacked.join("boot").join(format!("vmlinuz-{release}"));
    if !image.exists() {
        fs::create_dir_all(&dir)?;
        println!("downloading {package}");
        util::run(cmd("apt-get").args(["download", package]).current_dir(&dir))?;
        let deb = fs::read_dir(&dir)?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with(".deb"))
            })
            .with_context(|| format!("apt-get download {package} left no .deb"))?;
        util::run(cmd("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked))?;
        let _ = fs::remove_file(&deb);
    }
    let modules = Path::new("/lib/modules").join(release);
    if !modules.exists() {
        util::run(
            cmd("cp")
                .arg("-a")
                .arg(unpacked.join("lib/modules").join(release))
                .arg(&modules),
        )?;
    }
    Ok(image)
}

/// The script run inside the VM: every test of the subset (or all), one
/// at a time, its libtest output into `out`.
fn script(tests: &[(String, PathBuf)], full: bool, out: &Path) -> String {
    let bin = root().join("target").join("release");
    let mut s = format!(
        "#!/bin/sh\ncd {}\nexport AI_FORENSICS_BIN={} AI_FORENSICS_WORKLOAD={} AI_FORENSICS_ROOT={} AI_FORENSICS_SERVICES={}\n",
        root().display(),
        bin.join("ai-forensics").display(),
        bin.join("workload").display(),
        root().display(),
        crate::services::dir().display(),
    );
    for (name, exe) in tests {
        let filters: Vec<&str> = if full {
            Vec::new()
        } else {
            match SUBSET.iter().find(|(n, _)| n == name) {
                Some((_, f)) => f.to_vec(),
                None => continue,
            }
        };
        let exact = if full { "" } else { " --exact" };
        s.push_str(&format!(
            "{} --test-threads=1{exact} {} > {}/{name}.out 2>&1\n",
            exe.display(),
            filters.join(" "),
            out.display()
        ));
    }
    s.push_str(&format!("echo finished > {}/finished\n", out.display()));
    s
}

/// Per test: passed or not, from libtest's lines.
fn results(out: &Path) -> BTreeMap<String, bool> {
    let mut r = BTreeMap::new();
    for e in fs::read_dir(out).into_iter().flatten().flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("out") {
            continue;
        }
        let file = p
            .file_stem()
            .and_then(|x| x.to_str())
            .unwrap_or("")
            .to_owned();
        for l in fs::read_to_string(&p).unwrap_or_default().lines() {
            let Some(rest) = l.strip_prefix("test ") else {
                continue;
            };
            if let Some((name, verdict)) = rest.rsplit_once(" ... ") {
                r.insert(format!("{file}::{name}"), verdict.trim() == "ok");
            }
        }
    }
    r
}

/// The kernels `which` names, or a one-line error (checked before anything
/// is built).
pub fn chosen(
    which: &str,
) -> anyhow::Result<Vec<&'static (&'static str, &'static str, &'static str)>> {
    let chosen: Vec<_> = KERNELS
        .iter()
        .filter(|(short, _, release)| which == "all" || which == *short || which == *release)
        .collect();
    if chosen.is_empty() {
        bail!(
            "unknown kernel '{which}': one of {}, or all",
            KERNELS.iter().map(|k| k.0).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(chosen)
}

/// `cargo xtask test --kernel WHICH [--full]` with the test binaries built.
pub fn run(which: &str, full: bool, tests: &[(String, PathBuf)]) -> anyhow::Result<()> {
    let chosen = chosen(which)?;
    ensure_tools()?;
    let mut failed = Vec::new();
    for (short, package, release) in chosen {
        let image = kernel(package, release)?;
        let out = root()
            .join("target")
            .join("kernels")
            .join(format!("out-{release}"));
        let _ = fs::remove_dir_all(&out);
        fs::create_dir_all(&out)?;
        let sh = out.join("run.sh");
        fs::write(&sh, script(tests, full, &out))?;
        util::run(cmd("chmod").arg("+x").arg(&sh))?;
        println!("== integration tests under Linux {release} (virtme-ng, emulated) ==");
        let started = Instant::now();
        // The guest's exit status is not the tests': they are read back.
        let limit = if full { 3600 } else { 1200 };
        let _ = util::succeeds(
            cmd("timeout")
                .arg(limit.to_string())
                .args(["vng", "--disable-kvm", "--force-9p", "-v", "-m", "2G"])
                .args(["--append", "lsm=lockdown,yama,bpf"])
                .arg("-r")
                .arg(&image)
                .arg("--rwdir")
                .arg(&out)
                .arg("-e")
                .arg(&sh)
                .stdout(std::process::Stdio::null()),
        );
        let took = started.elapsed();
        let r = results(&out);
        for (t, ok) in &r {
            println!("  {short}: {t} ... {}", if *ok { "ok" } else { "FAILED" });
        }
        let want: usize = if full {
            r.len()
        } else {
            SUBSET.iter().map(|(_, f)| f.len()).sum()
        };
        let passed = r.values().filter(|ok| **ok).count();
        println!(
            "  {short}: {passed} of {want} passed in {:.0} s",
            took.as_secs_f64()
        );
        if !out.join("finished").exists() {
            failed.push(format!(
                "{release}: the VM did not finish within {} s",
                Duration::from_secs(limit).as_secs()
            ));
        }
        if passed < want || r.len() < want {
            failed.push(format!("{release}: {passed} of {want} tests passed"));
        }
    }
    if !failed.is_empty() {
        bail!("kernel matrix failed: {}", failed.join("; "));
    }
    Ok(())
}
