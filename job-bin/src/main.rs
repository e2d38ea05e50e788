//! `jobd`: the reference binary of the job platform.
//!
//! It composes `job-core` with a store (SQLite by default, PostgreSQL by URL), the local and
//! SSH transports and the HTTP interface into one process:
//!
//! - `jobd serve` runs a control node (REST, live output, the engine);
//! - `jobd migrate` applies schema upgrades explicitly;
//! - `jobd token create` makes an API token and prints it once;
//! - `jobd agent` runs the resident agent on a host (agent mode over NATS).
//!
//! Configuration: a TOML file (`--config` or `JOBD_CONFIG`) under `JOBD_*` environment
//! overrides; docs/configuration.md lists every knob. Exit status: 0 done, 1 failed,
//! 2 bad usage or configuration.

mod agent;
mod bootstrap;
mod config;
mod connector;
mod database;
mod keys;
mod serve;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::database::OpenStore;
use crate::serve::say;

/// jobd - run scripts, distribute files and run playbooks on fleets of hosts.
#[derive(Debug, Parser)]
#[command(name = "jobd", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control node: REST API, live output and the engine, until SIGTERM or SIGINT.
    Serve(ConfigArg),
    /// Apply pending schema upgrades to the database and report the schema as up to date.
    Migrate(ConfigArg),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Run the resident agent on a host: connect to NATS (nats.url), register, run the
    /// tasks control nodes send, until SIGTERM or SIGINT.
    Agent(ConfigArg),
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// The TOML configuration file; without one, every knob has its default (environment
    /// variables JOBD_* still apply).
    #[arg(long, value_name = "FILE", env = "JOBD_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an API token for a user in a team; the token is the last line printed.
    Create(TokenCreate),
}

#[derive(Debug, Args)]
struct TokenCreate {
    /// The user the token acts for (at most with their role in the team).
    #[arg(long, value_name = "NAME")]
    user: String,
    /// The team whose assets the token may use.
    #[arg(long, value_name = "NAME")]
    team: String,
    /// A label for people, e.g. `ci` or `patch-manager`.
    #[arg(long, value_name = "LABEL")]
    name: String,
    /// Days until the token expires (1-3650); without it, it does not expire.
    #[arg(long, value_name = "N")]
    expires_days: Option<u32>,
    #[command(flatten)]
    config: ConfigArg,
}

/// Why a command failed, and so which exit status it gets.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Bad usage or configuration: exit status 2.
    Usage(String),
    /// The command could not do its work: exit status 1.
    Run(String),
}

fn main() -> ExitCode {
    // One rustls crypto provider for the whole process (async-nats would otherwise pull in
    // ring and rustls would refuse to pick); ignoring a provider already installed.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Agent(arg) => with_runtime(arg, agent::agent),
        Command::Serve(arg) => with_runtime(arg, serve::serve),
        Command::Migrate(arg) => with_runtime(arg, migrate),
        Command::Token(TokenCommand::Create(request)) => {
            let config = request.config.config.clone();
            with_runtime(ConfigArg { config }, move |config| {
                token_create(config, request)
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("jobd: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Run(message)) => {
            eprintln!("jobd: {message}");
            ExitCode::from(1)
        }
    }
}

/// Loads the configuration, starts the logs and a tokio runtime, and runs `command` on it.
fn with_runtime<F, Fut>(arg: ConfigArg, command: F) -> Result<(), Failure>
where
    F: FnOnce(Config) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let env = |name: &str| std::env::var(name).ok();
    let config = Config::load(arg.config.as_deref(), &env).map_err(|e| Failure::Usage(e.0))?;
    // The filter was checked when the configuration was loaded.
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Run(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(command(config))
}

async fn migrate(config: Config) -> Result<(), Failure> {
    prepare_sqlite_dir(&config)?;
    let store = OpenStore::open(&config.database)
        .await
        .map_err(Failure::Run)?;
    store.close().await;
    say(&format!(
        "database ({}): schema up to date",
        config.database
    ));
    Ok(())
}

async fn token_create(config: Config, request: TokenCreate) -> Result<(), Failure> {
    prepare_sqlite_dir(&config)?;
    let opened = OpenStore::open(&config.database)
        .await
        .map_err(Failure::Run)?;
    let store = opened.shared();
    let created = token::create_token(
        store.as_ref(),
        &token::TokenRequest {
            user: &request.user,
            team: &request.team,
            name: &request.name,
            expires_days: request.expires_days,
        },
    )
    .await;
    opened.close().await;
    let created = created?;
    let expires = created
        .token
        .expires_at
        .map_or_else(|| "never".to_owned(), |t| t.to_rfc3339());
    say(&format!(
        "created API token `{}` (id {}) for user `{}` in team `{}`, expires: {expires}",
        created.token.name, created.token.id, request.user, request.team
    ));
    say("the token is shown only now; send it as `Authorization: Bearer <token>`:");
    say(&created.secret);
    Ok(())
}

/// The data directory holds the default SQLite database: create it (0700) when missing.
fn prepare_sqlite_dir(config: &Config) -> Result<(), Failure> {
    if matches!(config.database, config::Database::Sqlite(_)) {
        keys::prepare_data_dir(&config.data_dir).map_err(Failure::Run)?;
    }
    Ok(())
}
