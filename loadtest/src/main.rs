//! `townhall-load`: measures a townhall deployment (and the Socket.IO peer) under load.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "townhall-load",
    version,
    about = "Load tester for townhall: simulated citizens over WebSocket, latency reports and plots"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulated citizens and moderators on real WebSocket connections (Q&A, votes, chat).
    Chat(townhall_loadtest::chat::ChatArgs),
    /// A Markdown table of several `chat --json` reports, and the scaling plot.
    Summarize(townhall_loadtest::chat::SummarizeArgs),
    /// WHEP viewers (and optionally a WHIP publisher) with webrtc-rs: time to first frame,
    /// packets received against sent, loss, jitter, server CPU and memory.
    Media(townhall_loadtest::media::MediaArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TOWNHALL_LOAD_LOG")
                // webrtc-rs warns per packet about early media (before its DTLS is ready) and
                // about client details a load run cannot change; its errors still show.
                .unwrap_or_else(|_| {
                    "warn,rtc=error,rtc_dtls=error,rtc_ice=error,webrtc=error".into()
                }),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Chat(args) => {
            let report = townhall_loadtest::chat::run(args).await?;
            if report.connections_held == 0 {
                anyhow::bail!("no connection joined");
            }
        }
        Command::Summarize(args) => townhall_loadtest::chat::summarize(&args)?,
        Command::Media(args) => townhall_loadtest::media::run(args).await?,
    }
    Ok(())
}
