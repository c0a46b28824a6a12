//! The `tidings` binary's library half: configuration, wiring and
//! lifecycle. `main.rs` only parses the command line.
//!
//! [`App::start`] builds the parts from a [`Config`] — store, use cases,
//! dispatcher, HTTP server, pruner — starts them on the current tokio
//! runtime, and returns a handle whose [`RunningApp::shutdown`] stops them
//! in order: stop accepting HTTP, stop leasing, let requests in flight
//! finish, commit their outcomes. Tests and benchmarks start the same
//! `App` in-process (optionally with a manual clock) or run the binary.
//!
//! No client can take a listener away from the others: the HTTP listener
//! ([`http_server`]) and the SMTP listeners admit connections within a
//! total and a per-address limit and bound how long each may take, and
//! [`fds`] raises the file-descriptor limit at start and fits the
//! listeners' totals under it with a reserve for the store and outbound
//! delivery (docs/security.md).

pub mod config;
pub mod data_dir;
mod dns;
pub mod fds;
pub mod http_server;
mod inbound;
mod submission;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tidings_core::metrics::Metrics;
use tidings_core::{CoreConfig, Tidings};
use tidings_delivery::client::{ClientConfig, WebhookClient};
use tidings_delivery::dispatch::{Dispatcher, DispatcherConfig};
use tidings_delivery::guard::GuardedResolver;
use tidings_delivery::retry::RetryPolicy;
use tidings_store::sqlite::{SqliteOptions, SqliteStore};
use tidings_types::address::AddressPolicy;
use tidings_types::{Clock, SystemClock};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::Config;

/// mimalloc rather than the system allocator: delivery allocates and frees
/// many small buffers per request across threads, where glibc's malloc
/// spent about a sixth of the tokio workers' time. Declared here, so the
/// binary, the benchmarks and the tests all run with it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A started tidings.
pub struct RunningApp {
    pub app: Tidings,
    pub addr: SocketAddr,
    /// The SMTP submission listener (STARTTLS), when enabled.
    pub smtp_addr: Option<SocketAddr>,
    /// The implicit-TLS submission listener, when enabled.
    pub smtps_addr: Option<SocketAddr>,
    /// The inbound MX, when enabled.
    pub inbound_addr: Option<SocketAddr>,
    pub metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningApp {
    /// Stop gracefully and wait until every part has stopped.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }

    pub fn token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// Builder of a running tidings.
pub struct App;

impl App {
    /// Start with the wall clock.
    pub async fn start(config: &Config) -> anyhow::Result<RunningApp> {
        Self::start_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Start with a given clock (tests pass a manual one).
    pub async fn start_with_clock(
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<RunningApp> {
        let store = open_store(config)?;
        let core_cfg = core_config(config);
        let policy = core_cfg.address_policy;
        let verp = verp_codec(config)?;
        let listener = tokio::net::TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("binding the HTTP listener on {}", config.http.listen))?;
        let addr = listener.local_addr()?;
        let tracker = tracker(config, addr)?;
        let metrics = Arc::new(Metrics::new());
        // Every event is counted where it commits, whoever recorded it.
        tidings_store::Store::observe_events(store.as_ref(), metrics.clone());
        let txt = dns::TxtLookups::new(&config.outbound.nameservers)
            .context("building the DNS resolver for domain checks")?;
        let mut app = Tidings::new(store.clone(), clock.clone(), core_cfg)
            .with_metrics(metrics.clone())
            .with_messages(store.clone())
            .with_txt_resolver(Arc::new(txt));
        if let Some(v) = &verp {
            app = app.with_verp(v.clone());
        }
        app = app.with_tracker(tracker);
        app.load_tracking_hosts()
            .await
            .context("reading the accounts' tracking domains")?;
        // Before anything is served: the keys also say which From domains
        // each account may send from.
        let keys = app.load_dkim().await.context("loading DKIM keys")?;
        tracing::debug!(keys, "DKIM keys loaded");
        let client = WebhookClient::new(ClientConfig {
            timeout: config.webhook_timeout(),
            policy,
            ..ClientConfig::default()
        })
        .context("building the webhook HTTP client")?;
        // Tests of a webhook go through the same client as its deliveries,
        // and a saved host name is resolved under the same policy.
        app = app
            .with_webhook_attempts(Arc::new(client.clone()))
            .with_host_resolver(Arc::new(GuardedResolver::new(policy)));
        let dispatcher = Dispatcher::new(
            app.clone(),
            client,
            DispatcherConfig {
                max_held: config.webhooks.max_held,
                lease_duration: config.webhook_timeout() * 4 + Duration::from_secs(60),
                retry: RetryPolicy {
                    max_retry_after: Duration::from_secs(config.webhooks.max_retry_after_secs),
                    ..RetryPolicy::default()
                },
                // The embedded store has exactly one user: this process.
                release_leases_on_start: true,
                on_pause: Some(pause_hook(app.clone())),
                ..DispatcherConfig::default()
            },
            metrics.clone(),
        );

        let shutdown = CancellationToken::new();
        let router = tidings_web::router(tidings_web::AppState {
            app: app.clone(),
            metrics: metrics.clone(),
        });

        let budget = connection_budget(config);
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(http_server::serve(
            listener,
            router,
            http_server::HttpLimits {
                max_connections: budget.http,
                max_connections_per_ip: config.http.max_connections_per_ip.min(budget.http),
                header_read_timeout: Duration::from_secs(config.http.header_read_timeout_secs),
                idle_timeout: Duration::from_secs(config.http.idle_timeout_secs),
            },
            metrics.clone(),
            shutdown.clone(),
        )));
        tasks.push(tokio::spawn(dispatcher.run(shutdown.clone())));
        let outbound = outbound_worker(config, &app)?;
        tasks.push(tokio::spawn(outbound.run(shutdown.clone())));

        let smtp = tidings_smtp::SmtpServer::new(
            Arc::new(tidings_smtp::SmtpConfig {
                hostname: config.hostname.clone(),
                tls: match (&config.smtp.cert, &config.smtp.key) {
                    (Some(cert), Some(key)) => tidings_smtp::TlsSource::Files {
                        cert: cert.clone(),
                        key: key.clone(),
                    },
                    _ => tidings_smtp::TlsSource::SelfSigned,
                },
                max_connections: budget.submission,
                max_connections_per_ip: config.smtp.max_connections_per_ip.min(budget.submission),
                setup_timeout: Duration::from_secs(config.smtp.auth_timeout_secs),
                idle_timeout: Duration::from_secs(config.smtp.idle_timeout_secs),
                ..tidings_smtp::SmtpConfig::default()
            }),
            Arc::new(submission::Handler { app: app.clone() }),
        )
        .context("setting up SMTP TLS")?;
        let mut smtp_addr = None;
        if let Some(listen) = config.smtp.listen {
            let l = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding SMTP submission on {listen}"))?;
            smtp_addr = Some(l.local_addr()?);
            let (server, token) = (smtp.clone(), shutdown.clone());
            tasks.push(tokio::spawn(async move { server.serve(l, token).await }));
        }
        let mut inbound_addr = None;
        if let Some(listen) = config.inbound.listen {
            let mx = tidings_smtp::SmtpServer::inbound(
                Arc::new(tidings_smtp::SmtpConfig {
                    hostname: config.hostname.clone(),
                    max_connections: budget.inbound,
                    max_connections_per_ip: config
                        .inbound
                        .max_connections_per_ip
                        .min(budget.inbound),
                    setup_timeout: Duration::from_secs(config.inbound.mail_timeout_secs),
                    idle_timeout: Duration::from_secs(config.inbound.idle_timeout_secs),
                    ..tidings_smtp::SmtpConfig::default()
                }),
                Arc::new(inbound::Handler {
                    app: app.clone(),
                    feedback: config
                        .inbound
                        .feedback_addresses
                        .iter()
                        .map(|a| a.to_ascii_lowercase())
                        .collect(),
                    domains: config
                        .bounce_domain()
                        .into_iter()
                        .chain([config.hostname.clone()])
                        .map(|d| d.to_ascii_lowercase())
                        .collect(),
                }),
            )
            .context("setting up the inbound MX")?;
            let l = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding the inbound MX on {listen}"))?;
            inbound_addr = Some(l.local_addr()?);
            let token = shutdown.clone();
            tasks.push(tokio::spawn(async move { mx.serve(l, token).await }));
        }
        let mut smtps_addr = None;
        if let Some(listen) = config.smtp.tls_listen {
            let l = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding SMTP submission (TLS) on {listen}"))?;
            smtps_addr = Some(l.local_addr()?);
            let (server, token) = (smtp.clone(), shutdown.clone());
            tasks.push(tokio::spawn(async move {
                server.serve_implicit_tls(l, token).await
            }));
        }
        tasks.push(tokio::spawn(prune_loop(
            app.clone(),
            Duration::from_secs(config.retention.prune_interval_secs),
            shutdown.clone(),
        )));

        Ok(RunningApp {
            app,
            addr,
            smtp_addr,
            smtps_addr,
            inbound_addr,
            metrics,
            shutdown,
            tasks,
        })
    }
}

/// The listeners' connection limits, fitted under the file descriptor
/// limit with its reserve (see [`fds`]); a listener that is off takes none.
fn connection_budget(config: &Config) -> fds::Budget {
    let smtp_on = config.smtp.listen.is_some() || config.smtp.tls_listen.is_some();
    fds::budget(
        config.http.max_connections,
        if smtp_on {
            config.smtp.max_connections
        } else {
            0
        },
        if config.inbound.listen.is_some() {
            config.inbound.max_connections
        } else {
            0
        },
    )
}

/// The operator's rules for the use cases, from the configuration: the
/// same for `serve` and the one-shot commands (`tidings inbound`).
pub fn core_config(config: &Config) -> CoreConfig {
    CoreConfig {
        backfill: Duration::from_secs(u64::from(config.webhooks.backfill_days) * 86_400),
        address_policy: AddressPolicy {
            allow_loopback: config.webhooks.allow_loopback,
            allow_private: config.webhooks.allow_private,
        },
        secret_overlap: Duration::from_secs(u64::from(config.webhooks.secret_overlap_hours) * 3600),
        pause_after: config.webhooks.pause_after,
        hostname: config.hostname.clone(),
        retention: Duration::from_secs(u64::from(config.retention.days) * 86_400),
        complaint_unsubscribes: config.inbound.complaint_unsubscribes,
        allow_any_sender: config.sending.allow_any_sender,
        domain_proof: config.domains.proof,
        ..CoreConfig::default()
    }
}

fn outbound_worker(config: &Config, app: &Tidings) -> anyhow::Result<tidings_outbound::Worker> {
    let o = &config.outbound;
    let cfg = tidings_outbound::OutboundConfig {
        helo: config.hostname.clone(),
        smarthost: o.smarthost.clone(),
        smarthost_auth: match (&o.smarthost_user, &o.smarthost_password) {
            (Some(u), Some(p)) => Some(tidings_outbound::worker::RelayAuth {
                user: u.clone(),
                password: tidings_types::SecretString::new(p.clone()),
            }),
            _ => None,
        },
        smarthost_ca_file: o.smarthost_ca_file.clone(),
        allow_plaintext_auth: o.allow_plaintext_auth,
        transports: o.transports.clone(),
        nameservers: o.nameservers.clone(),
        mx_port: o.mx_port,
        mx_policy: AddressPolicy {
            allow_loopback: o.allow_loopback,
            allow_private: o.allow_private,
        },
        starttls: o.starttls,
        per_destination: o.per_destination.max(1),
        timeout: Duration::from_secs(o.timeout_secs.max(1)),
        max_age: Duration::from_secs(u64::from(o.max_age_hours) * 3600),
        release_leases_on_start: true,
        ..Default::default()
    };
    // The worker leases through the use cases, asks them for what it
    // sends (VERP return path, tracking rewrite, DKIM), and hands each
    // reply back to them to decide and record.
    tidings_outbound::Worker::new(app.clone(), cfg).context("starting outbound delivery")
}

/// Email the account when one of its webhooks pauses.
fn pause_hook(app: Tidings) -> tidings_delivery::dispatch::PauseHook {
    tidings_delivery::dispatch::PauseHook(Arc::new(move |webhook, event_type, reason| {
        let app = app.clone();
        tokio::spawn(async move { app.notify_pause(webhook, event_type, reason).await });
    }))
}

/// A 32-byte secret kept in the data directory (private), made on first
/// start.
fn secret_file(config: &Config, name: &str) -> anyhow::Result<Vec<u8>> {
    data_dir::prepare(&config.data_dir)
        .with_context(|| format!("preparing the data directory {}", config.data_dir.display()))?;
    let path = config.data_dir.join(name);
    match std::fs::read(&path) {
        Ok(k) if k.len() >= 32 => Ok(k),
        _ => {
            let mut k = vec![0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut k);
            data_dir::write_private(&path, &k)
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(k)
        }
    }
}

fn tracker(
    config: &Config,
    addr: SocketAddr,
) -> anyhow::Result<Arc<tidings_core::tracking::Tracker>> {
    let key = secret_file(config, "tracking.key")?;
    let mut k = [0u8; 32];
    k.copy_from_slice(&key[..32]);
    let keys = tidings_tracking::TokenKeys::new((1, k), vec![])
        .map_err(|e| anyhow::anyhow!("tracking keys: {e:?}"))?;
    let base = config
        .tracking
        .base_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let base_url = base
        .parse()
        .with_context(|| format!("tracking.base_url {base}"))?;
    Ok(Arc::new(tidings_core::tracking::Tracker {
        keys,
        base_url,
        unsubscribe: config.tracking.unsubscribe,
        hosts: Default::default(),
        links: Default::default(),
    }))
}

/// The VERP codec, its key kept in the data directory (created on first
/// start).
pub fn verp_codec(config: &Config) -> anyhow::Result<Option<Arc<tidings_mail::verp::VerpCodec>>> {
    let Some(domain) = config.bounce_domain() else {
        return Ok(None);
    };
    let key = secret_file(config, "verp.key")?;
    let codec = tidings_mail::verp::VerpCodec::new(&key, &domain)
        .map_err(|e| anyhow::anyhow!("bounce domain {domain}: {e}"))?;
    Ok(Some(Arc::new(codec)))
}

/// Open the configured store (the event log and the messages live in it).
pub fn open_store(config: &Config) -> anyhow::Result<Arc<SqliteStore>> {
    data_dir::prepare(&config.data_dir)
        .with_context(|| format!("preparing the data directory {}", config.data_dir.display()))?;
    let path = config.database_path();
    let mut opts = SqliteOptions::new(&path);
    opts.durability = match config.storage.durability {
        config::Durability::Full => tidings_store::sqlite::Durability::Full,
        config::Durability::Normal => tidings_store::sqlite::Durability::Normal,
    };
    let store = SqliteStore::open(opts)
        .with_context(|| format!("opening the database at {}", path.display()))?;
    Ok(Arc::new(store))
}

async fn prune_loop(app: Tidings, every: Duration, shutdown: CancellationToken) {
    loop {
        match app.prune().await {
            Ok(s) if s.events + s.attempts > 0 => {
                tracing::info!(
                    events = s.events,
                    attempts = s.attempts,
                    "pruned old records"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "pruning failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
