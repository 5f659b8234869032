//! `ai-forensics install` / `uninstall`: the systemd unit of the agent and
//! a default configuration. `--root` installs under another directory (for
//! packaging and tests); with the real root and a running systemd, the
//! manager is reloaded.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use super::config::Config;
use crate::error::{Error, Result};

/// The unit file, relative to the root.
pub const UNIT: &str = "etc/systemd/system/ai-forensics.service";

/// A path for a systemd command line (quoted when it needs to be).
fn quote(p: &Path) -> String {
    let s = p.display().to_string();
    if s.chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\\')
    {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        s
    }
}

/// The unit's text.
#[must_use]
pub fn unit(exe: &Path, config: &Path) -> String {
    format!(
        "[Unit]
Description=ai-forensics: flight recorder and kill switch for AI workloads
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={} agent --config {}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=2s
TimeoutStopSec=30s
# Loading eBPF programs and maps.
LimitMEMLOCK=infinity
StateDirectory=ai-forensics
ConfigurationDirectory=ai-forensics

[Install]
WantedBy=multi-user.target
",
        quote(exe),
        quote(config)
    )
}

fn under(root: &Path, p: &Path) -> PathBuf {
    root.join(p.strip_prefix("/").unwrap_or(p))
}

fn systemd_running(root: &Path) -> bool {
    root == Path::new("/") && Path::new("/run/systemd/system").is_dir()
}

fn systemctl(args: &[&str]) {
    match Command::new("systemctl").args(args).status() {
        Ok(s) if s.success() => {}
        Ok(s) => eprintln!("ai-forensics: systemctl {}: {s}", args.join(" ")),
        Err(e) => eprintln!("ai-forensics: systemctl {}: {e}", args.join(" ")),
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(d) = path.parent() {
        fs::create_dir_all(d).map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
    }
    fs::write(path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Writes the unit and, when missing, the configuration.
pub fn install(root: &Path, config: &Path) -> Result<()> {
    let exe = std::env::current_exe()
        .and_then(fs::canonicalize)
        .map_err(|e| Error::io("finding the ai-forensics executable", e))?;
    let unit_path = root.join(UNIT);
    write(&unit_path, &unit(&exe, config))?;
    println!("wrote {}", unit_path.display());
    let cfg = under(root, config);
    if cfg.exists() {
        Config::load(&cfg)?;
        println!("kept {} (it is valid)", cfg.display());
    } else {
        write(&cfg, &Config::default_text())?;
        println!("wrote {} (the defaults)", cfg.display());
    }
    if systemd_running(root) {
        systemctl(&["daemon-reload"]);
        println!("start it with: systemctl enable --now ai-forensics");
    } else {
        println!("systemd is not running here: enable the unit where it is");
    }
    Ok(())
}

/// Stops and removes the unit; the configuration and the store stay.
pub fn uninstall(root: &Path, config: &Path) -> Result<()> {
    let unit_path = root.join(UNIT);
    if systemd_running(root) {
        systemctl(&["disable", "--now", "ai-forensics"]);
    }
    match fs::remove_file(&unit_path) {
        Ok(()) => println!("removed {}", unit_path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("{} was not installed", unit_path.display());
        }
        Err(e) => return Err(Error::io(format!("removing {}", unit_path.display()), e)),
    }
    if systemd_running(root) {
        systemctl(&["daemon-reload"]);
    }
    println!(
        "kept {} and the store ({}); remove them by hand if they are no longer wanted",
        under(root, config).display(),
        crate::store::DEFAULT_PATH
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_runs_the_agent_and_reloads_with_hup() {
        let u = unit(
            Path::new("/usr/bin/ai-forensics"),
            Path::new("/etc/ai-forensics/config.toml"),
        );
        assert!(u.contains(
            "ExecStart=/usr/bin/ai-forensics agent --config /etc/ai-forensics/config.toml\n"
        ));
        assert!(u.contains("ExecReload=/bin/kill -HUP $MAINPID"));
        assert!(u.contains("WantedBy=multi-user.target"));
        let q = unit(
            Path::new("/opt/my tools/ai-forensics"),
            Path::new("/etc/a.toml"),
        );
        assert!(q.contains("ExecStart=\"/opt/my tools/ai-forensics\" agent"));
    }

    #[test]
    fn install_and_uninstall_under_a_root() {
        let root = std::env::temp_dir().join(format!("aif-install-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let cfg = Path::new("/etc/ai-forensics/config.toml");
        install(&root, cfg).unwrap();
        assert!(root.join(UNIT).is_file());
        let written = fs::read_to_string(under(&root, cfg)).unwrap();
        assert_eq!(Config::parse(&written).unwrap(), Config::default());
        // A second install keeps an existing configuration.
        fs::write(under(&root, cfg), "host = \"h1\"\n").unwrap();
        install(&root, cfg).unwrap();
        assert_eq!(
            fs::read_to_string(under(&root, cfg)).unwrap(),
            "host = \"h1\"\n"
        );
        uninstall(&root, cfg).unwrap();
        assert!(!root.join(UNIT).exists());
        assert!(under(&root, cfg).exists(), "configuration kept");
        let _ = fs::remove_dir_all(&root);
    }
}
