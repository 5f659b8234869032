//! The `ai-forensics` binary: parse, set up logging, run, map to an exit code.
use std::process::ExitCode;

use ai_forensics::{app, cli::Cli};
use clap::Parser as _;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // Buffers of 256 KiB and more (record batches, JSON of whole batches)
    // get their own mappings, returned on free. glibc would otherwise raise
    // this threshold after the first such free and carve them from the
    // heap, where what they leave behind stays resident.
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; no thread exists yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line: clap's own message, without the usage block.
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("error: bad arguments");
            eprintln!("ai-forensics: {first} (see --help)");
            return ExitCode::from(2);
        }
    };
    // Client libraries of the exporters log every connection at info; their
    // failures reach our own log through the exporters.
    let quiet = |level: String| {
        if level.contains('=') {
            level
        } else {
            format!("{level},rskafka=off,h2=warn,tower=warn,hyper=warn,tonic=warn")
        }
    };
    let filter = match &cli.log {
        Some(level) => EnvFilter::try_new(quiet(level.clone())),
        None => EnvFilter::try_from_default_env().or_else(|_| {
            EnvFilter::try_new(quiet(
                app::configured_log_level(&cli).unwrap_or_else(|| "warn".into()),
            ))
        }),
    };
    let filter = match filter {
        Ok(f) => f,
        Err(e) => {
            eprintln!("ai-forensics: error: --log: {e}");
            return ExitCode::from(2);
        }
    };
    // Under systemd (journald adds its own timestamps), plain lines.
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    if journal {
        fmt.without_time().init();
    } else {
        fmt.init();
    }
    match app::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "ai-forensics: error: {}",
                ai_forensics::error::one_line(&e.to_string())
            );
            ExitCode::from(e.exit_code())
        }
    }
}
