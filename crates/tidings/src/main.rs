//! `tidings` — run the service, or administer it.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tidings::{App, Config};
use tidings_core::Tidings;
use tidings_types::{AccountId, ApiKeyId, SystemClock};

#[derive(Parser)]
#[command(
    name = "tidings",
    version,
    about = "Transactional email with a real-time event API"
)]
struct Cli {
    /// TOML configuration file (settings also come from TIDINGS_* variables).
    #[arg(long, short, global = true, env = "TIDINGS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API and webhook delivery.
    Serve,
    /// Manage accounts.
    #[command(subcommand)]
    Account(AccountCmd),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Validate the configuration and print it with defaults filled in.
    CheckConfig,
    /// Process one bounce or feedback-loop report read from standard input
    /// (for operators whose MX is another MTA).
    Inbound {
        /// The address the report was delivered to (the VERP address).
        #[arg(long)]
        to: Vec<String>,
    },
}

#[derive(Subcommand)]
enum AccountCmd {
    /// Create an account and print its first API key (shown once).
    Create {
        #[arg(long)]
        name: String,
        /// Where notices about the account (paused webhooks) go.
        #[arg(long)]
        contact: Option<String>,
    },
    /// List accounts.
    List,
}

#[derive(Subcommand)]
enum KeyCmd {
    /// Create an API key for an account (shown once).
    Create {
        #[arg(long)]
        account: AccountId,
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// List an account's keys (prefixes only).
    List {
        #[arg(long)]
        account: AccountId,
    },
    /// Revoke a key.
    Revoke {
        #[arg(long)]
        account: AccountId,
        #[arg(long)]
        key: ApiKeyId,
    },
}

fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cfg.log.format {
        tidings::config::LogFormat::Json => builder.json().init(),
        tidings::config::LogFormat::Text => builder.init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cfg = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => serve(cfg).await,
        Command::Inbound { to } => {
            use std::io::Read;
            let mut raw = Vec::new();
            std::io::stdin().read_to_end(&mut raw)?;
            let mut app = admin(&cfg)?;
            if let Some(v) = tidings::verp_codec(&cfg)? {
                app = app.with_verp(v);
            }
            let summary = app.receive_report(&raw, &to, None).await?;
            println!("{}", serde_json::to_string(&summary)?);
            Ok(())
        }
        Command::CheckConfig => {
            println!("{}", serde_json::to_string_pretty(&cfg)?);
            Ok(())
        }
        Command::Account(cmd) => {
            let app = admin(&cfg)?;
            match cmd {
                AccountCmd::Create { name, contact } => {
                    let acc = app.create_account(&name, contact).await?;
                    let key = app.create_api_key(acc.id, "default").await?;
                    println!("account: {}", acc.id);
                    println!("api key: {}", key.key.expose());
                }
                AccountCmd::List => {
                    for a in app.list_accounts().await? {
                        println!(
                            "{}\t{}\t{}",
                            a.id,
                            a.name,
                            a.contact_email.unwrap_or_default()
                        );
                    }
                }
            }
            Ok(())
        }
        Command::Key(cmd) => {
            let app = admin(&cfg)?;
            match cmd {
                KeyCmd::Create { account, name } => {
                    let key = app.create_api_key(account, &name).await?;
                    println!("key id: {}", key.record.id);
                    println!("api key: {}", key.key.expose());
                }
                KeyCmd::List { account } => {
                    for k in app.list_api_keys(account).await? {
                        println!("{}\t{}…\t{}", k.id, k.prefix, k.name);
                    }
                }
                KeyCmd::Revoke { account, key } => {
                    app.revoke_api_key(account, key).await?;
                    println!("revoked {key}");
                }
            }
            Ok(())
        }
    }
}

/// The use cases over the configured store, for one-shot admin commands,
/// under the same rules as `serve`.
fn admin(cfg: &Config) -> anyhow::Result<Tidings> {
    let store = tidings::open_store(cfg)?;
    Ok(Tidings::new(
        store.clone(),
        std::sync::Arc::new(SystemClock),
        tidings::core_config(cfg),
    )
    .with_messages(store))
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    init_logging(&cfg);
    let signal = shutdown_signal();
    let running = App::start(&cfg).await?;
    if let Some((account, key)) = running
        .app
        .bootstrap()
        .await
        .context("creating the default account")?
    {
        println!("created the default account {}", account.id);
        println!("api key (shown once): {}", key.key.expose());
    }
    if let Some(a) = running.smtp_addr {
        println!("smtp submission (STARTTLS, user `apikey`, password: an API key) on {a}");
    }
    if let Some(a) = running.inbound_addr {
        println!("inbound mx (bounces, feedback loops) on {a}");
    }
    if let Some(a) = running.smtps_addr {
        println!("smtp submission (implicit TLS) on {a}");
    }
    println!("listening on http://{}", running.addr);
    tracing::info!(addr = %running.addr, data_dir = %cfg.data_dir.display(), "tidings is running");

    let token = running.token();
    tokio::select! {
        _ = signal => tracing::info!("shutting down"),
        _ = token.cancelled() => {}
    }
    running.shutdown().await;
    Ok(())
}

/// Resolves on SIGTERM (or Ctrl-C). The SIGTERM handler is installed when
/// this is called, not when it is first awaited, so a signal that comes
/// right after "listening on" is printed stops tidings gracefully instead
/// of killing it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
    }
}
