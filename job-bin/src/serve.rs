//! `jobd serve`: one control node — the store, the engine, the HTTP interface — until
//! SIGTERM or SIGINT, then a graceful stop: no new connections, no new claims, a grace for
//! running host runs, then the rest recorded honestly as interrupted.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use job_core::bus::{EventBus, InProcessBus};
use job_core::clock::{Clock, SystemClock};
use job_core::engine::Engine;
use job_core::secret::SecretBox;
use job_core::transport::Transport;
use job_transport_local::{LocalConfig, LocalTransport};
use job_transport_nats::api::ApiServer;
use job_transport_nats::{NatsConfig, NatsEventBus, NatsTransport};
use job_transport_ssh::{HostKeyPolicy, SshOptions, SshTransport};
use tokio::sync::watch;

use crate::Failure;
use crate::bootstrap::{BootstrapPlan, bootstrap};
use crate::config::Config;
use crate::connector::NodeConnector;
use crate::database::OpenStore;
use crate::keys::{self, KeySource, MASTER_KEY_ENV};

/// The environment variable with the first administrator's password.
pub(crate) const ADMIN_PASSWORD_ENV: &str = "JOBD_ADMIN_PASSWORD";

/// How long the HTTP server may take to close its connections once the engine has stopped
/// (a client still holding a stream open does not keep `jobd` alive).
const HTTP_DRAIN: Duration = Duration::from_secs(5);

/// The control node's local transport, keeping run records in `runs`; first kills what a
/// crashed earlier life of this node left running there.
pub(crate) async fn local_transport(runs: &Path) -> LocalTransport {
    match job_transport_local::reap_orphans(runs, Duration::from_secs(5)).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            groups = n,
            "killed processes left running by a crash of the previous jobd"
        ),
        Err(e) => tracing::warn!(dir = %runs.display(), error = %e, "cannot read the run records"),
    }
    LocalTransport::with_config(LocalConfig::default().with_run_records(runs))
}

/// Connects the NATS transport when `nats.url` is set: agents, and the cluster event bus.
async fn connect_nats(config: &Config) -> Result<Option<NatsTransport>, Failure> {
    let Some(url) = &config.nats.url else {
        return Ok(None);
    };
    let mut nats = NatsConfig::new(url.clone())
        .with_prefix(&config.nats.namespace)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    nats.credentials = config.nats.credentials.clone();
    let transport = NatsTransport::connect(nats)
        .await
        .map_err(|e| Failure::Run(format!("cannot use NATS (nats.url): {e}")))?;
    tracing::info!(namespace = %config.nats.namespace, "NATS connected: agent mode and the cluster event bus are on");
    Ok(Some(transport))
}

/// Runs the control node until a stop signal; returns once everything has stopped.
pub(crate) async fn serve(config: Config) -> Result<(), Failure> {
    keys::prepare_data_dir(&config.data_dir).map_err(Failure::Run)?;
    let env_key = std::env::var(MASTER_KEY_ENV).ok();
    let (key_bytes, key_source) =
        keys::load_master_key(env_key.as_deref(), &config.master_key_file).map_err(Failure::Run)?;
    match key_source {
        KeySource::Environment => tracing::info!("master key taken from {MASTER_KEY_ENV}"),
        KeySource::File => {
            tracing::info!(file = %config.master_key_file.display(), "master key read")
        }
        KeySource::Generated => tracing::info!(
            file = %config.master_key_file.display(),
            "master key generated (mode 0600); back it up: without it stored credentials cannot be opened"
        ),
    }
    let master_key = key_bytes.master_key().map_err(Failure::Run)?;
    let session_key = key_bytes.session_key();
    let node_id = keys::node_id(&config.data_dir, || {
        job_core::engine::EngineConfig::default().node_id
    })
    .map_err(Failure::Run)?;
    ensure_known_hosts(&config.ssh.known_hosts).map_err(Failure::Run)?;

    let opened = OpenStore::open(&config.database)
        .await
        .map_err(Failure::Run)?;
    let store = opened.shared();
    tracing::info!(database = %config.database, node = %node_id, "store open, schema up to date");

    let admin_password = std::env::var(ADMIN_PASSWORD_ENV).ok();
    let plan = BootstrapPlan {
        admin_password: admin_password.as_deref(),
        local_target: config
            .local_target
            .enabled
            .then_some(&config.local_target.name),
    };
    let done = bootstrap(store.as_ref(), &plan)
        .await
        .map_err(|e| match e {
            job_core::Error::Invalid { .. } => Failure::Usage(e.to_string()),
            e => Failure::Run(format!("first-start setup failed: {e}")),
        })?;
    if done.admin_created {
        let line = match &done.generated_password {
            // Shown once, on the terminal only: never through the log.
            Some(p) => format!("admin password: {p}"),
            None => format!("admin password: (as given in {ADMIN_PASSWORD_ENV})"),
        };
        say(&line);
    }

    let secrets: Arc<dyn SecretBox> = Arc::new(master_key);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let local: Arc<dyn Transport> = Arc::new(local_transport(&config.data_dir.join("runs")).await);
    let ssh = Arc::new(SshTransport::new(ssh_options(&config), config.ssh.idle));
    let mut connector = NodeConnector::new(store.clone(), secrets.clone(), local, ssh.clone());
    // With NATS: agent-mode targets (and their presence), and the live stream of any
    // execution on any node.
    let mut directory: Option<Arc<NatsTransport>> = None;
    let bus: Arc<dyn EventBus> = match connect_nats(&config).await? {
        Some(agents) => {
            let bus = NatsEventBus::new(agents.client().clone(), agents.config().namespace.clone());
            let agents = Arc::new(agents);
            connector = connector.with_agents(agents.clone());
            directory = Some(agents);
            Arc::new(bus)
        }
        None => Arc::new(InProcessBus::default()),
    };
    let connector = Arc::new(connector);
    let engine = Engine::new(
        store.clone(),
        connector,
        bus.clone(),
        clock.clone(),
        config.engine_config(node_id),
    );
    // One callback guard (allow-list and resolver) for both edges.
    let callback = config.callback_guard();
    let state = job_http::AppState::new(
        store.clone(),
        bus.clone(),
        secrets,
        clock.clone(),
        session_key,
        config.http_config(callback.clone()),
    );
    // The NATS open interfaces ({namespace}.job_script_execute, …) on the same connection.
    let nats_api = match &directory {
        Some(nats) => Some(
            ApiServer::bind(
                nats.client().clone(),
                nats.config().namespace.clone(),
                store.clone(),
                bus.clone(),
                clock.clone(),
                callback,
            )
            .await
            .map_err(|e| Failure::Run(format!("cannot serve the NATS open interfaces: {e}")))?,
        ),
        None => None,
    };
    if let Some(directory) = directory {
        state.set_agents(directory);
    }
    let router = job_http::router(state.clone());

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Failure::Run(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::Run(format!("cannot read the listening address: {e}")))?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    tokio::spawn({
        let stop_tx = stop_tx.clone();
        async move {
            wait_for_stop_signal().await;
            let _ = stop_tx.send(true);
        }
    });

    let nats_api = nats_api.map(|api| tokio::spawn(api.run(stopped(stop_rx.clone()))));
    let maintenance = tokio::spawn(close_idle_connections(
        ssh,
        config.ssh.idle,
        stop_rx.clone(),
    ));
    let grace = config.shutdown_grace;
    let mut engine_task = tokio::spawn({
        let stop = stopped(stop_rx.clone());
        async move { engine.run_with_grace(stop, grace).await }
    });
    // Small writes (SSE events, short answers) leave at once: without TCP_NODELAY, Nagle's
    // algorithm holds them until the client's delayed ACK, ≈ 40 ms on loopback.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
    });
    let mut server = tokio::spawn({
        let stop = stopped(stop_rx.clone());
        async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop)
                .await
        }
    });

    state.set_ready(true);
    tracing::info!(%addr, "jobd listening");
    say(&format!("jobd listening on http://{addr}"));

    // Until a stop signal, or until the server or the engine ends on its own (a failure).
    let (mut engine_done, mut server_done) = (false, false);
    let stop_flag = stop_rx.clone();
    let failure = tokio::select! {
        biased;
        () = stopped(stop_rx) => None,
        ended = &mut server => {
            server_done = true;
            Some(format!("the HTTP server stopped unexpectedly: {}", ended_how(ended)))
        }
        ended = &mut engine_task => {
            engine_done = true;
            Some(format!("the engine stopped unexpectedly: {}", ended_how(ended.map(Ok::<(), String>))))
        }
    };
    // The server and the engine end because of the stop flag, and their ends can wake this
    // task before the flag's own notification does: an end after the flag is no failure.
    let failure = failure.filter(|_| !*stop_flag.borrow());
    if let Some(why) = &failure {
        tracing::error!("{why}; stopping");
    }
    let _ = stop_tx.send(true);
    state.set_ready(false);
    tracing::info!(
        grace_secs = grace.as_secs(),
        "stopping: no new work; running hosts get the grace period"
    );
    if !engine_done && let Err(e) = engine_task.await {
        tracing::error!(error = %e, "the engine stopped abnormally");
    }
    if !server_done {
        match tokio::time::timeout(HTTP_DRAIN, server).await {
            Ok(ended) => {
                if let Some(e) = ended_badly(ended) {
                    tracing::warn!("the HTTP server stopped with an error: {e}");
                }
            }
            Err(_) => tracing::info!("closing HTTP connections still open"),
        }
    }
    if let Some(api) = nats_api {
        // It answers what is under way, then stops (the stop flag is up).
        if tokio::time::timeout(HTTP_DRAIN, api).await.is_err() {
            tracing::info!("NATS requests still under way were dropped");
        }
    }
    maintenance.abort();
    opened.close().await;
    tracing::info!("jobd stopped");
    match failure {
        Some(why) => Err(Failure::Run(why)),
        None => Ok(()),
    }
}

/// How a task that should have run until the stop ended.
fn ended_how<E: std::fmt::Display>(ended: Result<Result<(), E>, tokio::task::JoinError>) -> String {
    ended_badly(ended).unwrap_or_else(|| "without an error".to_owned())
}

fn ended_badly<E: std::fmt::Display>(
    ended: Result<Result<(), E>, tokio::task::JoinError>,
) -> Option<String> {
    match ended {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(e) => Some(e.to_string()),
    }
}

/// Prints one line on stdout for the operator (and for tests that read it).
pub(crate) fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn ssh_options(config: &Config) -> SshOptions {
    let path = config.ssh.known_hosts.clone();
    let policy = if config.ssh.trust_on_first_use {
        HostKeyPolicy::TrustOnFirstUse(path)
    } else {
        HostKeyPolicy::KnownHosts(path)
    };
    let mut options = SshOptions::new(policy);
    options.connect_timeout = config.ssh.connect_timeout;
    options
}

/// Creates an empty known_hosts file (0600) when there is none, so a first SSH target is
/// refused as "unknown host key" rather than "cannot read known_hosts".
fn ensure_known_hosts(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    if path.exists() {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create the directory {}: {e}", parent.display()))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

/// Completes when the stop flag is raised.
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// SIGTERM or SIGINT (Ctrl-C).
pub(crate) async fn wait_for_stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on SIGINT only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Closes pooled SSH connections unused for `idle`, until the stop flag is raised.
async fn close_idle_connections(
    ssh: Arc<SshTransport>,
    idle: Duration,
    stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval((idle / 2).max(Duration::from_secs(1)));
    let stop = stopped(stop);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = tick.tick() => {
                let closed = ssh.pool().close_idle().await;
                if closed > 0 {
                    tracing::debug!(closed, "closed idle SSH connections");
                }
            }
        }
    }
}
