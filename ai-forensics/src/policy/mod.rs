//! Policy: rule files, the rule engine, and the bundled rule pack for AI
//! workloads. User space decides; `enforce` and the kernel act.
pub mod corpus;
pub mod engine;
pub mod replay;
pub mod rules;

/// The bundled rule pack for AI workloads (`--rules builtin`).
pub static BUILTIN: &str = include_str!("../../../rules/ai-workloads.yaml");

/// Loads `--rules`: a file, or `builtin[:PROFILE]` for the bundled pack
/// (profiles: `auto`, the default, `training`, `inference`, `agent`).
pub fn load(spec: &str) -> crate::error::Result<rules::Rules> {
    let Some(profile) = spec.strip_prefix("builtin").and_then(|p| {
        if p.is_empty() {
            Some("auto")
        } else {
            p.strip_prefix(':')
        }
    }) else {
        return rules::Rules::load(std::path::Path::new(spec));
    };
    if !rules::PROFILES.contains(&profile) {
        return Err(crate::error::Error::usage(format!(
            "--rules {spec}: no bundled profile '{profile}' (profiles: {})",
            rules::PROFILES.join(", ")
        )));
    }
    let mut r = rules::Rules::parse_profile(
        &format!("builtin:{profile} (rules/ai-workloads.yaml)"),
        BUILTIN,
        profile,
    )?;
    r.profile = Some(profile.to_owned());
    Ok(r)
}

#[cfg(test)]
mod tests {
    #[test]
    fn builtin_pack_is_valid() {
        let r = super::load("builtin").unwrap();
        assert!(r.rules.len() >= 10, "{}", r.rules.len());
        assert!(r.rules.iter().any(|r| r.kernel));
    }

    #[test]
    fn profiles() {
        let names = |p: &str| -> Vec<String> {
            super::load(p)
                .unwrap()
                .rules
                .iter()
                .map(|r| r.name.clone())
                .collect()
        };
        let agent = names("builtin:agent");
        // An agent's job is to run tools and shells.
        assert!(!agent.iter().any(|n| n.contains("shell")), "{agent:?}");
        for n in [
            "credentials-read",
            "cloud-metadata",
            "persistence",
            "mass-deletion",
        ] {
            assert!(agent.iter().any(|a| a == n), "agent lacks {n}");
        }
        for p in [
            "builtin",
            "builtin:auto",
            "builtin:training",
            "builtin:inference",
        ] {
            assert!(
                names(p).iter().any(|n| n == "shell-spawned-by-model"),
                "{p}"
            );
        }
        assert!(
            names("builtin:inference")
                .iter()
                .any(|n| n == "model-file-written")
        );
        let auto = super::load("builtin").unwrap();
        let shell = auto
            .rules
            .iter()
            .find(|r| r.name == "shell-spawned-by-model")
            .unwrap();
        assert_eq!(shell.when.ai_workload, Some(super::rules::AiCond::Ml));
        let e = super::load("builtin:gpu").unwrap_err().to_string();
        assert!(e.contains("no bundled profile 'gpu'"), "{e}");
    }

    #[test]
    fn bundled_globs_match_real_absolute_paths() {
        let r = super::load("builtin:training").unwrap();
        let lists = &r.lists;
        let glob = |g: &str| {
            globset::GlobBuilder::new(g)
                .literal_separator(true)
                .build()
                .unwrap()
                .compile_matcher()
        };
        let cases: &[(&str, &[&str], &[&str])] = &[
            (
                "credentials",
                &[
                    "/root/.aws/credentials",
                    "/home/alice/.aws/credentials",
                    "/home/alice/.config/gcloud/application_default_credentials.json",
                    "/root/.netrc",
                    "/home/bob/.docker/config.json",
                    "/root/.kube/config",
                    "/etc/shadow",
                    "/root/.ssh/id_rsa",
                    "/home/alice/.ssh/id_ed25519",
                ],
                &[
                    "/root/.aws/credentials.bak",
                    "/tmp/credentials",
                    "/root/.ssh/keys/x",
                ],
            ),
            (
                "secrets",
                &[
                    "/root/.ssh/id_rsa",
                    "/home/alice/.ssh/authorized_keys",
                    "/etc/gshadow",
                ],
                &["/root/.sshx/id_rsa", "/home/alice/ssh/id_rsa"],
            ),
            (
                "pickle_files",
                &[
                    "/data/run/model.pt",
                    "/m/pytorch_model.bin",
                    "/c/epoch=3.ckpt",
                    "/x.pkl",
                ],
                &["/m/model.safetensors", "/m/model.gguf", "/m/model.onnx"],
            ),
            (
                "model_files",
                &[
                    "/m/model.safetensors",
                    "/root/.cache/m.gguf",
                    "/w/model.onnx",
                    "/w/a.pt",
                ],
                &["/w/model.txt"],
            ),
            (
                "persistence",
                &[
                    "/etc/crontab",
                    "/var/spool/cron/crontabs/root",
                    "/etc/cron.d/job",
                    "/root/.bashrc",
                    "/home/alice/.profile",
                    "/etc/systemd/system/x.service",
                    "/home/alice/.config/systemd/user/x.service",
                    "/root/.ssh/authorized_keys",
                    "/etc/ld.so.preload",
                ],
                &["/tmp/bashrc", "/root/notes.txt"],
            ),
            (
                "output_dirs",
                &[
                    "/tmp/x/y.log",
                    "/work/run/out/model.pt",
                    "/data/exp/checkpoints/step-1.safetensors",
                    "/root/.cache/huggingface/hub/x",
                    "/srv/proj/__pycache__/m.cpython-311.pyc",
                ],
                &["/etc/passwd", "/root/.bashrc", "/usr/lib/x.so"],
            ),
        ];
        for (list, hits, misses) in cases {
            let globs: Vec<_> = lists[*list].iter().map(|g| glob(g)).collect();
            for p in *hits {
                assert!(globs.iter().any(|g| g.is_match(p)), "{list} misses {p}");
            }
            for p in *misses {
                assert!(!globs.iter().any(|g| g.is_match(p)), "{list} matches {p}");
            }
        }
    }
}
