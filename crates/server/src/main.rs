//! `townhall`: run the service (`townhall serve`, the default).

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use townhall_core::command::{PinAnnouncement, StartMeeting};
use townhall_core::{Actor, Command};
use townhall_server::config::{Config, LogFormat, ServeArgs};

#[derive(Parser, Debug)]
#[command(
    name = "townhall",
    version,
    about = "Live virtual town meetings: questions, chat and moderation for citizens at home",
    long_about = "Live virtual town meetings: citizens watch from home and ask questions, \
                  moderators screen and queue them, speakers answer them on air.\n\n\
                  Without a subcommand, townhall serves (same as `townhall serve`). Every flag \
                  can also be set with its TOWNHALL_* environment variable or in the TOML file \
                  given with --config.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the service: web pages, WebSocket hub and organizer API, on embedded SQLite.
    Serve(ServeArgs),
}

/// Prints a line to stdout; a closed stdout (a script that read only the first line) is not
/// an error worth dying for.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// BSD `EX_USAGE`/`EX_CONFIG`-style exit code for bad configuration.
const EXIT_CONFIG: u8 = 64;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Cmd::Serve(args)) => args,
        None => cli.serve,
    };
    let config = match Config::load(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("townhall: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if args.print_config {
        print!("{}", config.to_redacted_toml());
        return ExitCode::SUCCESS;
    }
    init_logging(config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("townhall: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config, args.demo)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("townhall: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOWNHALL_LOG")
        // str0m warns about details of peers' SDP (e.g. a RED payload type it ignores) that
        // an operator can do nothing about; its errors still show.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,str0m=error"));
    // Colours only for a person at a terminal, not in log files or journald.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.compact().init(),
    }
}

async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    #[cfg(unix)]
    match townhall_server::listen::raise_open_files_limit() {
        Ok((before, after)) if before != after => {
            tracing::info!(before, after, "raised the open-files limit")
        }
        Ok((limit, _)) => tracing::info!(limit, "open-files limit"),
        Err(e) => tracing::warn!(error = %e, "cannot read or raise the open-files limit"),
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let (app, generated_token) = townhall_server::build(config).await?;
    let base = townhall_server::base_url(&app.config, listener.local_addr()?);
    // Stable first line: scripts and tests read the address from it.
    say!("townhall listening on {base}");
    say!("  organizer page: {base}/admin");
    match (&generated_token, app.config.admin_token.is_some()) {
        (Some(token), _) => say!("  admin token (shown only now, keep it safe): {token}"),
        (None, true) => say!("  admin token: from configuration"),
        (None, false) => say!(
            "  admin token: the one printed at first start (set TOWNHALL_ADMIN_TOKEN to replace it)"
        ),
    }
    if demo {
        let (id, moderator, studio, reused) = demo_meeting(&app).await?;
        say!(
            "  demo meeting (live{}):",
            if reused { ", the one from before" } else { "" }
        );
        say!("    citizens:   {base}/m/{id}");
        say!("    moderators: {base}/m/{id}/moderate#{moderator}");
        say!("    studio:     {base}/m/{id}/studio#{studio}");
    }
    townhall_server::run(listener, app, shutdown_signal()).await
}

const DEMO_TITLE: &str = "Borgermøde (demo)";

/// The live demo meeting: the one an earlier `--demo` made, if it is still live (with new
/// links, as only their hashes are kept), else a new one. Running `--demo` again does not pile
/// up demo meetings. Returns the id, the moderator and studio tokens, and whether it was reused.
async fn demo_meeting(
    app: &townhall_server::App,
) -> anyhow::Result<(townhall_core::MeetingId, String, String, bool)> {
    let existing = app
        .hub
        .log()
        .list_meetings()
        .await?
        .into_iter()
        .find(|m| m.title == DEMO_TITLE && m.status == townhall_core::MeetingStatus::Live);
    if let Some(record) = existing {
        let (moderator, studio) = app.hub.rotate_links(&record.id).await?;
        return Ok((record.id, moderator, studio, true));
    }
    let created = app.hub.create_meeting(DEMO_TITLE).await?;
    let id = created.record.id.clone();
    app.hub
        .command(&id, Actor::organizer(), Command::StartMeeting(StartMeeting))
        .await?;
    app.hub
        .command(
            &id,
            Actor::organizer(),
            Command::PinAnnouncement(PinAnnouncement {
                text: "Velkommen til demo-mødet. Stil et spørgsmål, og se det på moderatorsiden."
                    .into(),
            }),
        )
        .await?;
    Ok((id, created.moderator_token, created.studio_token, false))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
