//! The command line, as the user typed it (clap derive). `app` resolves it
//! into session options.
use std::{ffi::OsString, path::PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// ai-forensics: flight recorder and kill switch for AI workloads.
///
/// Watches, at the syscall boundary and with eBPF, what a training job, an
/// inference server or an AI agent does: files and model weights it opens
/// and reads, memory it maps, threads it synchronises, what it writes,
/// spawns and connects to. Must run as root (or with CAP_BPF+CAP_PERFMON).
#[derive(Debug, Parser)]
#[command(name = "ai-forensics", version, max_term_width = 100)]
pub struct Cli {
    /// Diagnostics level on stderr (error, warn, info, debug, trace); RUST_LOG works too.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Trace running processes (by PID, name, executable, cgroup, or all).
    Trace(TraceArgs),
    /// Launch a command and trace it, with its whole process tree, from its first syscall.
    Run(RunArgs),
    /// List the recorded sessions in the store.
    Sessions(StoreArgs),
    /// Summary of a recorded session.
    Show {
        /// Session number, or `last`.
        session: String,
        /// One JSON object (the session row and its stored summary) instead of tables.
        #[arg(long)]
        json: bool,
        /// `json`: the same as --json; `text`: tables (the default).
        #[arg(long, value_enum)]
        format: Option<FormatArg>,
        /// Store.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Records of a session that match filters (JSON Lines or text).
    Query(QueryArgs),
    /// Re-emit a session's records in order, as they were written live.
    Replay {
        /// Session number, or `last`.
        session: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "json")]
        format: FormatArg,
        /// Store.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Check a store's hash chains: intact, or the first batch altered, removed or reordered.
    Verify {
        /// Database file (default: the store).
        db: Option<PathBuf>,
        /// Only this session.
        #[arg(long)]
        session: Option<String>,
        /// Also check each session against the digests in this anchor file
        /// (written by `--anchor`; `-` for stdin) and name the first batch
        /// that differs.
        #[arg(long, value_name = "FILE")]
        anchor: Option<PathBuf>,
    },
    /// Make running recorders write out their flight-recorder window now.
    Dump {
        /// Only the recorder with this PID.
        #[arg(long)]
        pid: Option<u32>,
    },
    /// Report of a session: tables on the terminal, or one self-contained HTML file.
    Report {
        /// Session number, or `last`.
        session: String,
        /// Write an HTML report (charts as inline SVG) to FILE.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Store.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Check rule files, or evaluate them against a recorded session.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// The reference external analyser.
    #[command(subcommand)]
    Analyser(AnalyserCommand),
    /// Learn a behaviour profile from recorded sessions.
    #[command(subcommand)]
    Baseline(BaselineCommand),
    /// Print the JSON Lines record schema.
    Schema,
    /// List syscall names and the groups accepted by --syscalls.
    Syscalls,
    /// Probe this kernel's eBPF and enforcement features and say what each
    /// missing one costs.
    Doctor {
        /// Print JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Run as a service: trace what the configuration selects, record,
    /// serve metrics, export, and reload the configuration on SIGHUP.
    Agent(AgentArgs),
    /// Install the agent's systemd unit (and a default configuration when there is none).
    Install(InstallArgs),
    /// Stop and remove the agent's systemd unit (the configuration and the store stay).
    Uninstall(InstallArgs),
    /// Attach empty programs to the syscall tracepoints until interrupted
    /// (the cost floor measured by `cargo xtask bench`).
    #[command(hide = true)]
    BenchFloor {
        /// Only the program on sys_exit (the floor of a one-program tracer).
        #[arg(long)]
        exit_only: bool,
    },
}

/// `agent` arguments.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Configuration file (TOML; every key has a default: see `--print-config`).
    #[arg(long, value_name = "FILE", default_value = crate::agent::config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// Print the default configuration and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Check the configuration file and exit.
    #[arg(long)]
    pub check: bool,
}

/// `install` / `uninstall` arguments.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Install under this directory instead of / (for packaging).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Configuration file the service reads.
    #[arg(long, value_name = "FILE", default_value = crate::agent::config::DEFAULT_PATH)]
    pub config: PathBuf,
}

/// Who to trace.
#[derive(Debug, Args, Default)]
pub struct TargetArgs {
    /// Trace this process, its threads and its descendants (repeatable, or comma-separated).
    #[arg(short, long = "pid", value_name = "PID", value_delimiter = ',')]
    pub pids: Vec<String>,
    /// Trace every process on the machine except ai-forensics itself.
    #[arg(long)]
    pub all: bool,
    /// Trace processes whose name (comm) matches REGEX, running now or started later.
    #[arg(long, value_name = "REGEX")]
    pub comm: Option<String>,
    /// Trace processes whose executable path matches REGEX, running now or started later.
    #[arg(long, value_name = "REGEX")]
    pub exe: Option<String>,
    /// Trace every process in this cgroup v2 directory (repeatable); covers containers.
    #[arg(long, value_name = "PATH")]
    pub cgroup: Vec<PathBuf>,
    /// Find AI workloads automatically: processes mapping ML runtimes or opening model files.
    #[arg(long)]
    pub discover: bool,
}

/// Event mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// In-kernel aggregates only (lossless, cheapest).
    Count,
    /// Stream every selected syscall as an event.
    Events,
}

/// Event stream format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// JSON Lines (see `ai-forensics schema`).
    Json,
    /// One strace-like line per event.
    Text,
}

/// `rules` subcommands.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate a rule file (`builtin[:PROFILE]` for the bundled pack); errors carry line numbers.
    Check {
        /// Rule file.
        file: String,
    },
    /// Evaluate a rule file against a recorded session and print what would
    /// fire; or, with --corpus, run the evasion and benign corpora under a
    /// bundled profile (`builtin` for all four) and compare with what each
    /// case expects.
    Test {
        /// Rule file (`builtin[:PROFILE]` with --corpus).
        file: String,
        /// Session number, or `last`.
        #[arg(long, required_unless_present = "corpus", conflicts_with = "corpus")]
        session: Option<String>,
        /// Corpus directory holding `evasion/` and `benign/` (as root; it
        /// runs each case under `ai-forensics run`).
        #[arg(long, value_name = "DIR")]
        corpus: Option<PathBuf>,
        /// Recording modes to run the corpus in.
        #[arg(long, value_delimiter = ',', default_value = "count,events", value_parser = ["count", "events"])]
        modes: Vec<String>,
        /// Store.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `baseline` subcommands.
#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Build a profile of normal behaviour from benign sessions (events mode).
    Learn {
        /// Session numbers (or `last`).
        #[arg(required = true)]
        sessions: Vec<String>,
        /// Profile file to write.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// Flag runs whose syscall mix is farther than this (0..1).
        #[arg(long, default_value_t = 0.25)]
        mix_threshold: f64,
        /// Store.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// `analyser` subcommands.
#[derive(Debug, Subcommand)]
pub enum AnalyserCommand {
    /// Serve verdicts: rules plus a learned baseline of executables, endpoints and directories.
    Serve {
        /// TCP address (loopback by default) or unix:/PATH.
        #[arg(long, default_value = "127.0.0.1:9900")]
        listen: String,
        /// File holding the shared secret (first line, at least 16 characters).
        #[arg(long, value_name = "FILE")]
        token_file: PathBuf,
        /// Rules to evaluate (a file or `builtin`).
        #[arg(long, value_name = "FILE")]
        rules: Option<String>,
        /// Learn what is normal for this long, then flag what is new (e.g. 30s).
        #[arg(long, value_name = "DURATION")]
        learn: Option<String>,
        /// Action for baseline deviations.
        #[arg(long, default_value = "alert", value_parser = ["log", "alert", "stop", "kill"])]
        deviation_action: String,
    },
}

/// Which store to read.
#[derive(Debug, Args, Default)]
pub struct StoreArgs {
    /// Store database (default: $AI_FORENSICS_STORE or /var/lib/ai-forensics/ai-forensics.db).
    #[arg(long, value_name = "PATH")]
    pub store: Option<PathBuf>,
}

/// `query` arguments.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Session number, or `last`.
    pub session: String,
    /// Only this process.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Only this syscall.
    #[arg(long)]
    pub syscall: Option<String>,
    /// Only records whose path matches GLOB (`*`, `?`, `[...]`).
    #[arg(long, value_name = "GLOB")]
    pub path: Option<String>,
    /// Only this record type (syscall, process, exec, lost, alert...).
    #[arg(long = "type", value_name = "TYPE")]
    pub kind: Option<String>,
    /// From this time: RFC 3339, +DURATION from the session's start, or monotonic ns.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Until this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// At most N records.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    pub format: FormatArg,
    /// Store.
    #[command(flatten)]
    pub store: StoreArgs,
}

/// How and what to record.
#[derive(Debug, Args, Default)]
pub struct RecordArgs {
    /// count: per-syscall aggregates in the kernel; events: stream each selected call.
    /// Default: events when --json/--format, --syscalls or --flight-recorder is given, else count.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Syscalls to stream: names and groups (file, memory, sync, process, network, ipc,
    /// gpu, all, default), comma-separated; `!name` removes one.
    #[arg(short = 'e', long, value_name = "LIST")]
    pub syscalls: Option<String>,
    /// Write events as JSON Lines (same as --format json).
    #[arg(long)]
    pub json: bool,
    /// Event stream format.
    #[arg(long, value_enum, conflicts_with = "json")]
    pub format: Option<FormatArg>,
    /// Write the event stream to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Stop after this long (e.g. 30s, 5m).
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// Keep and show counts per process and thread.
    #[arg(long)]
    pub per_process: bool,
    /// Ring buffer size (e.g. 256K, 16M, 1G); rounded up to a power of two.
    /// Kernel memory, mapped twice into ai-forensics (it shows as twice its
    /// size in RSS). Raise it for bursts above a few hundred thousand events/s.
    #[arg(long, value_name = "SIZE", default_value = "8M")]
    pub ring_buffer: String,
    /// Time every syscall: exact latency columns (total, min, avg, max, p99).
    /// On by default in events mode; in count mode it adds two clock reads
    /// per call, so it is off unless asked for.
    #[arg(long, conflicts_with = "no_latency")]
    pub latency: bool,
    /// Events mode: time only the streamed syscalls (cheaper; latency columns
    /// only for them).
    #[arg(long)]
    pub no_latency: bool,
    /// Live table refresh interval (e.g. 1s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub interval: String,
    /// No live table on the terminal.
    #[arg(long)]
    pub no_live: bool,
    /// No summary at the end.
    #[arg(long)]
    pub no_summary: bool,
    /// Rows in the live table and in the summary's file list.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..))]
    pub top: u16,
    /// Record into this store (default: $AI_FORENSICS_STORE or /var/lib/ai-forensics/ai-forensics.db).
    #[arg(long, value_name = "PATH", conflicts_with = "no_store")]
    pub store: Option<PathBuf>,
    /// Do not record into the store.
    #[arg(long)]
    pub no_store: bool,
    /// Append each sealed batch's digest to this file as it is sealed (one
    /// JSON line per batch; keep it on another machine or an append-only
    /// mount). `verify --anchor FILE` checks a store against it.
    #[arg(long, value_name = "FILE", conflicts_with = "no_store")]
    pub anchor: Option<PathBuf>,
    /// Keep only the last DURATION of records in memory; write them (and
    /// what follows) to the store when triggered (alert, SIGUSR1, `dump`).
    #[arg(long, value_name = "DURATION", conflicts_with = "no_store")]
    pub flight_recorder: Option<String>,
    /// Evaluate these rules and act on them (a YAML file, or `builtin[:PROFILE]` for the bundled AI pack: auto, training, inference, agent).
    #[arg(long, value_name = "FILE")]
    pub rules: Option<String>,
    /// Stream records to this analyser and act on its verdicts (http://HOST:PORT/PATH or unix:/PATH).
    #[arg(long, value_name = "URL")]
    pub analyser: Option<String>,
    /// File with the analyser's shared secret (or $AI_FORENSICS_ANALYSER_TOKEN).
    #[arg(long, value_name = "FILE")]
    pub analyser_token_file: Option<PathBuf>,
    /// When the analyser is down, slow or answers garbage: keep running (open) or stop the workload (closed).
    #[arg(long, value_name = "MODE", default_value = "open", value_parser = ["open", "closed"])]
    pub analyser_failure: String,
    /// Per-request analyser timeout.
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    pub analyser_timeout: String,
    /// Compare the run with a learned profile (`baseline learn`) and flag deviations.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Hash model artefacts (SHA-256) at the end; files over 2 GiB and work past 60 s are skipped.
    #[arg(long)]
    pub hash_artifacts: bool,
    /// Also watch CUDA calls in this library (repeatable); libcudart/libcuda found by ldconfig are watched anyway.
    #[arg(long, value_name = "PATH")]
    pub gpu_lib: Vec<PathBuf>,
    /// Capture the plaintext of the targets' TLS traffic (OpenSSL, GnuTLS; static copies in node, bun, deno) by uprobes, and recognise HTTP exchanges and LLM API calls in it (`tls`, `http`, `llm` records). Credentials are redacted before anything is written. Implies --mode events. Off by default.
    #[arg(long)]
    pub tls_capture: bool,
    /// With --tls-capture: bytes captured per TLS call (the rest is counted, and the call marked truncated), up to 64K.
    #[arg(
        long,
        value_name = "SIZE",
        default_value = "16K",
        requires = "tls_capture"
    )]
    pub tls_capture_bytes: String,
    /// With --tls-capture: also watch this executable or library (repeatable), for TLS libraries linked in statically.
    #[arg(long, value_name = "PATH", requires = "tls_capture")]
    pub tls_binary: Vec<PathBuf>,
}

/// `trace` arguments.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Targets.
    #[command(flatten)]
    pub targets: TargetArgs,
    /// Recording.
    #[command(flatten)]
    pub record: RecordArgs,
}

/// `run` arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Recording.
    #[command(flatten)]
    pub record: RecordArgs,
    /// Run the command as USER (default: the user who invoked sudo) instead of root.
    #[arg(long, value_name = "USER", num_args = 0..=1, default_missing_value = "")]
    pub user: Option<String>,
    /// Decide kernel deny rules only in the kernel, by signal (the call
    /// runs, the process is killed), instead of refusing denied opens and
    /// execs before they run through seccomp user notification.
    #[arg(long)]
    pub no_seccomp: bool,
    /// The command and its arguments (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn trace_flags() {
        let c = Cli::try_parse_from([
            "ai-forensics",
            "trace",
            "--pid",
            "1,2",
            "-p",
            "3",
            "--json",
            "-e",
            "file",
        ])
        .unwrap();
        let Command::Trace(t) = c.command else {
            panic!()
        };
        assert_eq!(t.targets.pids, ["1", "2", "3"]);
        assert!(t.record.json);
        assert_eq!(t.record.syscalls.as_deref(), Some("file"));
        assert_eq!(t.record.ring_buffer, "8M");
    }

    #[test]
    fn run_flags() {
        let c = Cli::try_parse_from(["ai-forensics", "run", "--user", "--", "python3", "-c", "1"])
            .unwrap();
        let Command::Run(r) = c.command else { panic!() };
        assert_eq!(r.user.as_deref(), Some(""));
        assert_eq!(r.command, ["python3", "-c", "1"]);
        let c = Cli::try_parse_from(["ai-forensics", "run", "--user", "bob", "--", "x"]).unwrap();
        let Command::Run(r) = c.command else { panic!() };
        assert_eq!(r.user.as_deref(), Some("bob"));
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(Cli::try_parse_from(["ai-forensics", "trace", "--nope"]).is_err());
        assert!(
            Cli::try_parse_from(["ai-forensics", "trace", "--json", "--format", "text"]).is_err()
        );
        assert!(Cli::try_parse_from(["ai-forensics", "trace", "--top", "0"]).is_err());
        assert!(Cli::try_parse_from(["ai-forensics", "trace", "--mode", "fast"]).is_err());
    }
}
