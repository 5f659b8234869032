//! From the command line to a session: validation of every flag (bad input
//! is refused before any kernel object is touched) and dispatch.
use std::time::Duration;

use crate::{
    cli::{Cli, Command, FormatArg, ModeArg, RecordArgs, RunArgs, TargetArgs, TraceArgs},
    error::{Error, Result},
    inspect,
    session::{
        self,
        options::{Format, Launch, Mode, Options, TargetSpec},
    },
    syscall::{Selection, groups, table},
    target::{launch, select},
};

/// Runs the command; returns the process exit code.
pub fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Trace(t) => trace(t),
        Command::Run(r) => run_cmd(r),
        Command::Sessions(s) => inspect::sessions(&inspect::store_path(s.store.as_deref())),
        Command::Show {
            session,
            json,
            format,
            store,
        } => inspect::show(
            &inspect::store_path(store.store.as_deref()),
            &session,
            json || matches!(format, Some(crate::cli::FormatArg::Json)),
        ),
        Command::Query(q) => inspect::query(&q),
        Command::Replay {
            session,
            format,
            store,
        } => inspect::replay(
            &inspect::store_path(store.store.as_deref()),
            &session,
            format,
        ),
        Command::Verify {
            db,
            session,
            anchor,
        } => inspect::verify(
            &inspect::store_path(db.as_deref()),
            session.as_deref(),
            anchor.as_deref(),
        ),
        Command::Dump { pid } => inspect::dump(pid),
        Command::Report {
            session,
            html,
            store,
        } => crate::report::run(
            &inspect::store_path(store.store.as_deref()),
            &session,
            html.as_deref(),
        ),
        Command::Rules(r) => rules_cmd(r),
        Command::Analyser(a) => analyser_cmd(a),
        Command::Baseline(b) => baseline_cmd(b),
        Command::Schema => {
            print!("{}", crate::output::schema::SCHEMA);
            Ok(0)
        }
        Command::Doctor { json } => {
            let f = crate::loader::features::probe();
            if json {
                println!("{}", serde_json::json!({ "features": f }));
            } else {
                print!("{}", crate::loader::features::table(&f));
            }
            Ok(u8::from(f.iter().any(|x| x.required && !x.available)))
        }
        Command::Syscalls => {
            list_syscalls();
            Ok(0)
        }
        Command::BenchFloor { exit_only } => bench_floor(exit_only),
        Command::Agent(a) => agent_cmd(&a),
        Command::Install(i) => {
            crate::agent::install::install(&i.root, &i.config)?;
            Ok(0)
        }
        Command::Uninstall(i) => {
            crate::agent::install::uninstall(&i.root, &i.config)?;
            Ok(0)
        }
    }
}

/// Diagnostics level the agent's configuration asks for (used when neither
/// `--log` nor `RUST_LOG` says).
#[must_use]
pub fn configured_log_level(cli: &Cli) -> Option<String> {
    match &cli.command {
        Command::Agent(a) if !a.print_config => crate::agent::config::Config::load(&a.config)
            .ok()
            .map(|c| c.log.level),
        _ => None,
    }
}

/// `agent`: the configuration becomes the same options `trace` builds.
fn agent_cmd(a: &crate::cli::AgentArgs) -> Result<u8> {
    use crate::agent::config::Config;
    if a.print_config {
        print!("{}", Config::default_text());
        return Ok(0);
    }
    if !a.config.exists() {
        return Err(Error::usage(format!(
            "config {}: no such file (write one with `ai-forensics agent --print-config > FILE`, or run `ai-forensics install`)",
            a.config.display()
        )));
    }
    let c = Config::load(&a.config)?;
    if a.check {
        println!("{}: ok", a.config.display());
        return Ok(0);
    }
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let t = TargetArgs {
        pids: Vec::new(),
        all: c.targets.all,
        comm: nonempty(&c.targets.comm),
        exe: nonempty(&c.targets.exe),
        cgroup: c.targets.cgroups.clone(),
        discover: c.targets.discover,
    };
    let spec = targets(&t)?;
    if !spec.open_ended() {
        return Err(Error::usage(format!(
            "config {}: [targets] selects nothing (set discover, comm, exe, cgroups or all)",
            a.config.display()
        )));
    }
    let events = c.recording.mode == "events";
    let r = RecordArgs {
        mode: Some(if events {
            ModeArg::Events
        } else {
            ModeArg::Count
        }),
        syscalls: events.then(|| c.recording.syscalls.clone()),
        json: false,
        format: None,
        output: None,
        duration: None,
        per_process: c.recording.per_process,
        ring_buffer: c.recording.ring_buffer.clone(),
        latency: c.recording.latency,
        no_latency: false,
        interval: "1s".into(),
        no_live: true,
        no_summary: false,
        top: 20,
        store: nonempty(&c.recording.store).map(std::path::PathBuf::from),
        no_store: c.recording.store.is_empty(),
        anchor: nonempty(&c.recording.anchor).map(std::path::PathBuf::from),
        flight_recorder: nonempty(&c.recording.flight_recorder),
        rules: nonempty(&c.policy.rules),
        analyser: nonempty(&c.policy.analyser),
        analyser_token_file: nonempty(&c.policy.analyser_token_file).map(std::path::PathBuf::from),
        analyser_failure: c.policy.analyser_failure.clone(),
        analyser_timeout: c.policy.analyser_timeout.clone(),
        baseline: None,
        hash_artifacts: false,
        gpu_lib: Vec::new(),
        tls_capture: c.recording.tls_capture,
        tls_capture_bytes: c.recording.tls_capture_bytes.clone(),
        tls_binary: Vec::new(),
    };
    let mut opts = options(&r, spec, None)?;
    let host = c.host_name();
    tracing::info!(
        "agent: host {host}, configuration {}, mode {}",
        a.config.display(),
        c.recording.mode
    );
    opts.agent = Some(session::options::AgentSetup {
        config: c,
        path: a.config.clone(),
        host,
    });
    Ok(session::run(&opts)?.exit_code)
}

/// Holds the empty floor programs attached until SIGINT or SIGTERM.
fn bench_floor(exit_only: bool) -> Result<u8> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let _floor = crate::loader::attach_floor(exit_only)?;
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| Error::io("installing signal handlers", e))?;
    eprintln!("ai-forensics: floor programs attached");
    let _ = signals.forever().next();
    Ok(0)
}

fn list_syscalls() {
    println!("groups:");
    for (g, members) in groups::GROUPS {
        let present: Vec<&str> = members
            .iter()
            .copied()
            .filter(|m| table::number(m).is_some())
            .collect();
        println!("  {g}: {}", present.join(","));
    }
    println!(
        "  default: {}",
        groups::Selection::default_set()
            .numbers
            .iter()
            .map(|n| table::display_name(*n))
            .collect::<Vec<_>>()
            .join(",")
    );
    println!("syscalls ({}):", std::env::consts::ARCH);
    for (nr, name) in table::all() {
        println!("  {nr:>4} {name}");
    }
}

/// Parses a size such as `16M`, `256K`, `1G` or `65536`, rounded up to a
/// power of two of at least one page.
pub fn parse_size(s: &str) -> Result<u32> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => {
            let unit = t[i..].trim().to_ascii_uppercase();
            let m: u64 = match unit.trim_end_matches("IB").trim_end_matches('B') {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                _ => {
                    return Err(Error::usage(format!(
                        "--ring-buffer: bad size '{s}' (use e.g. 256K, 16M, 1G)"
                    )));
                }
            };
            (&t[..i], m)
        }
        None => (t, 1),
    };
    let n: u64 = num.parse().map_err(|_| {
        Error::usage(format!(
            "--ring-buffer: bad size '{s}' (use e.g. 256K, 16M, 1G)"
        ))
    })?;
    let bytes = n.saturating_mul(mult).max(4096).next_power_of_two();
    if bytes > 1 << 30 {
        return Err(Error::usage(format!(
            "--ring-buffer: {s} is larger than the 1G maximum"
        )));
    }
    Ok(bytes as u32)
}

fn parse_duration(flag: &str, s: &str) -> Result<Duration> {
    let d = humantime::parse_duration(s)
        .map_err(|e| Error::usage(format!("{flag}: bad duration '{s}': {e}")))?;
    if d.is_zero() {
        return Err(Error::usage(format!("{flag}: must be more than zero")));
    }
    Ok(d)
}

fn parse_pid(s: &str) -> Result<u32> {
    let t = s.trim();
    match t.parse::<i64>() {
        Ok(p) if p > 0 && p <= i64::from(i32::MAX) => Ok(p as u32),
        Ok(_) => Err(Error::usage(format!(
            "--pid: '{t}' is not a valid process id"
        ))),
        Err(_) => Err(Error::usage(format!("--pid: '{t}' is not a number"))),
    }
}

fn targets(t: &TargetArgs) -> Result<TargetSpec> {
    let pids = t
        .pids
        .iter()
        .map(|p| parse_pid(p))
        .collect::<Result<Vec<_>>>()?;
    if pids.contains(&1) {
        return Err(Error::usage(
            "--pid 1: init is the ancestor of everything; use --all to trace the whole machine",
        ));
    }
    Ok(TargetSpec {
        pids,
        all: t.all,
        selectors: select::Selectors {
            comm: t
                .comm
                .as_deref()
                .map(|p| select::regex("--comm", p))
                .transpose()?,
            exe: t
                .exe
                .as_deref()
                .map(|p| select::regex("--exe", p))
                .transpose()?,
            discover: t.discover,
        },
        cgroups: t.cgroup.clone(),
    })
}

fn options(r: &RecordArgs, targets: TargetSpec, launch: Option<Launch>) -> Result<Options> {
    let format = match (r.json, r.format) {
        (true, _) | (_, Some(FormatArg::Json)) => Some(Format::Json),
        (_, Some(FormatArg::Text)) => Some(Format::Text),
        _ => None,
    };
    let mode = match r.mode {
        Some(ModeArg::Count) => Mode::Count,
        Some(ModeArg::Events) => Mode::Events,
        // Asking for events (an event stream, a syscall selection, a flight
        // recorder) means events mode; otherwise the cheap count mode.
        None if format.is_some()
            || r.syscalls.is_some()
            || r.flight_recorder.is_some()
            || r.tls_capture =>
        {
            Mode::Events
        }
        None => Mode::Count,
    };
    if mode == Mode::Count && format == Some(Format::Text) {
        return Err(Error::usage(
            "--mode count keeps no events: --format text needs --mode events (--json gives the summary record)",
        ));
    }
    if r.output.is_some() && format.is_none() {
        return Err(Error::usage(
            "--output needs an event stream: add --json or --format text",
        ));
    }
    let rules = r.rules.as_deref().map(crate::policy::load).transpose()?;
    let mut selection = match &r.syscalls {
        Some(list) => Selection::parse(list)?,
        None => Selection::default_set(),
    };
    // The rules see every call they name, and the record keeps them all, so
    // an alert's evidence is in it.
    if let Some(rules) = &rules {
        match rules.syscalls() {
            None => selection = Selection::parse("all")?,
            Some(names) => selection
                .numbers
                .extend(names.iter().filter_map(|n| table::number(n))),
        }
    }
    let tls = tls_options(r, mode)?;
    if tls.is_some() {
        // A call's socket is the one its thread reads or writes meanwhile.
        selection.numbers.extend(
            crate::tls::SOCKET_IO
                .iter()
                .filter_map(|n| table::number(n)),
        );
    }
    let analyser = analyser_config(r)?;
    let mode_format = match (mode, format) {
        (Mode::Events, None) => None,
        (_, f) => f,
    };
    Ok(Options {
        targets,
        launch,
        mode,
        selection,
        format: mode_format,
        output: r.output.clone(),
        duration: r
            .duration
            .as_deref()
            .map(|d| parse_duration("--duration", d))
            .transpose()?,
        per_process: r.per_process,
        ring_bytes: parse_size(&r.ring_buffer)?,
        latency: match mode {
            Mode::Count => r.latency,
            Mode::Events => !r.no_latency,
        },
        interval: parse_duration("--interval", &r.interval)?,
        live: !r.no_live,
        summary: !r.no_summary,
        top: usize::from(r.top),
        store: (!r.no_store).then(|| crate::inspect::store_path(r.store.as_deref())),
        anchor: r.anchor.clone(),
        rules,
        analyser,
        baseline: r
            .baseline
            .as_deref()
            .map(crate::ai::baseline::Profile::load)
            .transpose()?,
        hash_artifacts: r.hash_artifacts,
        gpu_libs: check_gpu_libs(&r.gpu_lib)?,
        tls,
        agent: None,
        flight_recorder: r
            .flight_recorder
            .as_deref()
            .map(|d| parse_duration("--flight-recorder", d))
            .transpose()?,
    })
}

fn tls_options(r: &RecordArgs, mode: Mode) -> Result<Option<crate::session::options::TlsOptions>> {
    if !r.tls_capture {
        return Ok(None);
    }
    if mode == Mode::Count {
        return Err(Error::usage(
            "--tls-capture records plaintext: it needs --mode events",
        ));
    }
    let cap = parse_size(&r.tls_capture_bytes)?;
    let max = u64::from(ai_forensics_common::tls::MAX_CAPTURE);
    if cap == 0 || u64::from(cap) > max {
        return Err(Error::usage(format!(
            "--tls-capture-bytes: {} is not between 1 and {max}",
            r.tls_capture_bytes
        )));
    }
    for b in &r.tls_binary {
        if !b.is_file() {
            return Err(Error::usage(format!(
                "--tls-binary: {} is not a file",
                b.display()
            )));
        }
    }
    Ok(Some(crate::session::options::TlsOptions {
        capture_bytes: cap,
        binaries: r.tls_binary.clone(),
    }))
}

fn analyser_config(r: &RecordArgs) -> Result<Option<crate::analyser::client::Config>> {
    use crate::analyser::{client, protocol};
    let Some(url) = &r.analyser else {
        return Ok(None);
    };
    let endpoint = client::parse_endpoint(url)?;
    let token = match (
        &r.analyser_token_file,
        std::env::var("AI_FORENSICS_ANALYSER_TOKEN"),
    ) {
        (Some(f), _) => protocol::read_token(f)?,
        (None, Ok(t)) if t.len() >= 16 => t.into_bytes(),
        _ => {
            return Err(Error::usage(
                "--analyser needs --analyser-token-file FILE (or $AI_FORENSICS_ANALYSER_TOKEN, 16+ characters)",
            ));
        }
    };
    Ok(Some(client::Config {
        endpoint,
        token,
        failure: if r.analyser_failure == "closed" {
            client::Failure::Closed
        } else {
            client::Failure::Open
        },
        timeout: parse_duration("--analyser-timeout", &r.analyser_timeout)?,
    }))
}

fn rules_cmd(r: crate::cli::RulesCommand) -> Result<u8> {
    use crate::cli::RulesCommand;
    match r {
        RulesCommand::Check { file } => {
            let rules = crate::policy::load(&file)?;
            let kernel = rules.rules.iter().filter(|r| r.kernel).count();
            println!(
                "{}: {} rules ok ({kernel} enforced in the kernel)",
                rules.source,
                rules.rules.len()
            );
            for r in &rules.rules {
                println!(
                    "  {:>3}  {:<30} {:<8} {:<6}{}",
                    r.line,
                    r.name,
                    r.severity.as_str(),
                    r.action.as_str(),
                    if r.kernel { "  kernel" } else { "" }
                );
            }
            Ok(0)
        }
        RulesCommand::Test {
            file,
            session,
            corpus,
            modes,
            store,
        } => {
            if let Some(dir) = corpus {
                let profiles: Vec<&str> = match file.as_str() {
                    "builtin" => crate::policy::rules::PROFILES.to_vec(),
                    f => match f.strip_prefix("builtin:") {
                        Some(p) if crate::policy::rules::PROFILES.contains(&p) => vec![p],
                        _ => {
                            return Err(Error::usage(format!(
                                "rules test --corpus runs the bundled profiles: builtin or builtin:PROFILE ({}), not '{f}'",
                                crate::policy::rules::PROFILES.join(", ")
                            )));
                        }
                    },
                };
                crate::loader::privilege::check()?;
                let modes: Vec<&str> = modes.iter().map(String::as_str).collect();
                let ok = crate::policy::corpus::test(&dir, &profiles, &modes)?;
                return Ok(u8::from(!ok));
            }
            let session = session.unwrap_or_default();
            let rules = crate::policy::load(&file)?;
            let st = crate::store::Store::open(&inspect::store_path(store.store.as_deref()))?;
            let id = st.session_id(&session)?;
            let mut engine = crate::policy::engine::Engine::for_replay(rules);
            let mut buf = Vec::new();
            st.stream(id, &crate::store::query::Filter::default(), false, &mut buf)?;
            let mut fired = 0;
            for line in String::from_utf8_lossy(&buf).lines() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                for a in crate::policy::replay::feed(&mut engine, &v) {
                    fired += 1;
                    println!(
                        "{} {} {} -> {}: {} (evidence: {:?})",
                        v["time"].as_str().unwrap_or("-"),
                        a.severity.as_str(),
                        a.name,
                        a.action.as_str(),
                        a.reason,
                        a.evidence
                    );
                }
            }
            println!("{fired} alerts would fire on session {id}");
            Ok(0)
        }
    }
}

fn baseline_cmd(b: crate::cli::BaselineCommand) -> Result<u8> {
    use crate::{ai::baseline, cli::BaselineCommand};
    let BaselineCommand::Learn {
        sessions,
        output,
        mix_threshold,
        store,
    } = b;
    if !(0.0..=1.0).contains(&mix_threshold) {
        return Err(Error::usage("--mix-threshold: between 0 and 1"));
    }
    let st = crate::store::Store::open(&inspect::store_path(store.store.as_deref()))?;
    let mut runs = Vec::new();
    for s in &sessions {
        let id = st.session_id(s)?;
        let mut buf = Vec::new();
        st.stream(id, &crate::store::query::Filter::default(), false, &mut buf)?;
        let mut o = baseline::Observed::default();
        for line in String::from_utf8_lossy(&buf).lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                o.feed(&v);
            }
        }
        if o.counts.is_empty() {
            return Err(Error::usage(format!(
                "session {id} has no summary (it did not end normally); learn from completed sessions"
            )));
        }
        runs.push(o);
    }
    let mut p = baseline::Profile::learn(&runs);
    p.mix_threshold = mix_threshold;
    let text = serde_json::to_string_pretty(&p).map_err(|e| Error::Runtime(e.to_string()))?;
    std::fs::write(&output, text + "\n")
        .map_err(|e| Error::usage(format!("--output {}: {e}", output.display())))?;
    println!(
        "profile of {} sessions written to {}: {} executables, {} endpoints, {} directories written, {} syscalls in the mix",
        p.sessions,
        output.display(),
        p.exes.len(),
        p.endpoints.len(),
        p.dirs_written.len(),
        p.syscall_mix.len()
    );
    Ok(0)
}

fn analyser_cmd(a: crate::cli::AnalyserCommand) -> Result<u8> {
    use crate::{analyser::server, cli::AnalyserCommand};
    match a {
        AnalyserCommand::Serve {
            listen,
            token_file,
            rules,
            learn,
            deviation_action,
        } => {
            let token = crate::analyser::protocol::read_token(&token_file)?;
            let listen = match listen.strip_prefix("unix:") {
                Some(p) => server::Listen::Unix(p.into()),
                None => server::Listen::Tcp(listen),
            };
            let s = server::Serve {
                listen,
                token,
                rules: rules.as_deref().map(crate::policy::load).transpose()?,
                learn: learn
                    .as_deref()
                    .map(|d| parse_duration("--learn", d))
                    .transpose()?,
                deviation_action,
            };
            server::run(&s)
        }
    }
}

fn trace(t: TraceArgs) -> Result<u8> {
    let spec = targets(&t.targets)?;
    if spec.pids.is_empty()
        && !spec.all
        && spec.selectors.comm.is_none()
        && spec.selectors.exe.is_none()
        && spec.cgroups.is_empty()
        && !spec.selectors.discover
    {
        return Err(Error::usage(
            "trace: no target; give --pid, --comm, --exe, --cgroup, --discover or --all (or use `ai-forensics run -- CMD`)",
        ));
    }
    let opts = options(&t.record, spec, None)?;
    Ok(session::run(&opts)?.exit_code)
}

fn run_cmd(r: RunArgs) -> Result<u8> {
    if r.command.is_empty() || r.command[0].is_empty() {
        return Err(Error::usage(
            "run: no command given (usage: ai-forensics run [OPTIONS] -- CMD [ARGS...])",
        ));
    }
    launch::resolve_program(&r.command[0])?;
    let creds = match r.user.as_deref() {
        None => None,
        Some("") => Some(launch::credentials(&launch::invoking_user()?)?),
        Some(u) => Some(launch::credentials(u)?),
    };
    let opts = options(
        &r.record,
        TargetSpec::default(),
        Some(Launch {
            argv: r.command.clone(),
            creds,
            seccomp: !r.no_seccomp,
        }),
    )?;
    Ok(session::run(&opts)?.exit_code)
}

/// `--gpu-lib`: each must be a readable file (a typo would otherwise only
/// show up as a warning once the programs are loaded).
fn check_gpu_libs(libs: &[std::path::PathBuf]) -> Result<Vec<std::path::PathBuf>> {
    for l in libs {
        if !l.is_file() {
            return Err(Error::usage(format!(
                "--gpu-lib {}: no such file",
                l.display()
            )));
        }
    }
    Ok(libs.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16M").unwrap(), 16 << 20);
        assert_eq!(parse_size("256k").unwrap(), 256 << 10);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("100").unwrap(), 4096);
        assert_eq!(parse_size("5000").unwrap(), 8192);
        assert_eq!(parse_size("3MiB").unwrap(), 4 << 20);
        assert!(parse_size("2G").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("12Q").is_err());
    }

    #[test]
    fn pids_and_durations() {
        assert_eq!(parse_pid("42").unwrap(), 42);
        assert!(parse_pid("0").is_err());
        assert!(parse_pid("-5").is_err());
        assert!(parse_pid("abc").is_err());
        assert!(parse_pid("99999999999").is_err());
        assert_eq!(
            parse_duration("--duration", "1m").unwrap(),
            Duration::from_secs(60)
        );
        assert!(parse_duration("--duration", "0s").is_err());
        assert!(parse_duration("--duration", "soon").is_err());
        let t = TargetArgs {
            pids: vec!["1".into()],
            ..Default::default()
        };
        assert!(targets(&t).unwrap_err().to_string().contains("init"));
    }

    #[test]
    fn option_combinations() {
        let r = RecordArgs {
            json: true,
            ring_buffer: "16M".into(),
            interval: "1s".into(),
            top: 20,
            ..Default::default()
        };
        let o = options(&r, TargetSpec::default(), None).unwrap();
        assert_eq!((o.mode, o.format), (Mode::Events, Some(Format::Json)));
        let count_json = RecordArgs {
            json: true,
            mode: Some(ModeArg::Count),
            ring_buffer: "16M".into(),
            interval: "1s".into(),
            top: 20,
            ..Default::default()
        };
        let o = options(&count_json, TargetSpec::default(), None).unwrap();
        assert_eq!((o.mode, o.format), (Mode::Count, Some(Format::Json)));
        let bad = RecordArgs {
            format: Some(FormatArg::Text),
            mode: Some(ModeArg::Count),
            ring_buffer: "16M".into(),
            interval: "1s".into(),
            top: 20,
            ..Default::default()
        };
        assert!(options(&bad, TargetSpec::default(), None).is_err());
        let out = RecordArgs {
            output: Some("x".into()),
            ring_buffer: "16M".into(),
            interval: "1s".into(),
            top: 20,
            ..Default::default()
        };
        assert!(options(&out, TargetSpec::default(), None).is_err());
        let c = RecordArgs {
            ring_buffer: "16M".into(),
            interval: "1s".into(),
            top: 20,
            ..Default::default()
        };
        assert_eq!(
            options(&c, TargetSpec::default(), None).unwrap().mode,
            Mode::Count
        );
    }
}
