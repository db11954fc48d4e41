//! `kbi-advice serve`: the HTTP adapters around the core. Two listeners: the client listener
//! (SOAP, REST, OpenAPI) and the operations listener (metrics, health, reload).
//!
//! One request: actix-web routes it to [`soap_door`] or [`rest`]; the handler takes the
//! snapshot in use from [`state::SnapshotStore`] (an `Arc`, so a swap never disturbs it), asks
//! the core, records metrics and answers. [`reload`] builds new snapshots beside the old one.

pub mod body;
pub mod caller;
pub mod door;
pub mod guard;
pub mod ops;
pub mod policy;
pub mod reload;
pub mod rest;
pub mod settings;
pub mod soap_door;
pub mod state;
pub mod systemd;

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context;
use serde_json::json;

use crate::snapshot::redis::{watch_redis, WatchOptions};
use crate::snapshot::SnapshotSource;
use crate::telemetry::metrics::Metrics;
use kbi_audit::{AuditLog, AuditOptions};
use reload::Reloader;
use settings::{Checked, SnapshotOrigin};
use state::{AppState, Limits, References, SnapshotStore};

/// The OpenAPI 3.1 description of the REST door (`GET /openapi.json`).
pub const OPENAPI: &str = include_str!("../../api/openapi.json");

/// Runs the service until it is stopped (SIGINT/SIGTERM).
pub fn run(checked: Checked) -> anyhow::Result<()> {
    actix_web::rt::System::new()
        .block_on(async { Application::build(checked).await?.run_until_stopped().await })
}

/// The service, built and bound but not yet serving: the snapshot loaded (or the Redis watcher
/// started), the audit log open, SIGHUP handled, both listeners bound. Tests build it with
/// port 0 and ask [`Application::port`] where it listens.
pub struct Application {
    client: actix_web::dev::Server,
    ops: actix_web::dev::Server,
    port: u16,
    ops_bound: SocketAddr,
    listen: SocketAddr,
    ops_listen: SocketAddr,
    workers: usize,
    state: Arc<AppState>,
}

impl Application {
    /// Everything up to serving. Must run inside an actix system (it spawns the SIGHUP handler
    /// and the Redis watcher on it).
    pub async fn build(checked: Checked) -> anyhow::Result<Application> {
        build(checked).await
    }

    /// The port of the client listener (SOAP, REST), the one bound when `server.listen` asked
    /// for port 0.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address of the operations listener (metrics, health, reload).
    pub fn ops_address(&self) -> SocketAddr {
        self.ops_bound
    }

    /// Serves until SIGINT/SIGTERM: tells systemd it is ready, then stops both listeners
    /// gracefully.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Application {
            client,
            ops,
            ops_bound,
            listen,
            ops_listen,
            workers,
            state,
            ..
        } = self;
        tracing::info!(listen = %listen, ops_listen = %ops_listen, workers, "serving");
        systemd::spawn(state, ops_bound);
        tokio::try_join!(client, ops)?;
        systemd::stopping();
        tracing::info!("stopped");
        Ok(())
    }
}

/// Wires the checked settings to the parts: every option was typed and resolved by
/// [`settings`]; nothing here reads a raw setting.
async fn build(checked: Checked) -> anyhow::Result<Application> {
    let server = &checked.server;
    // First, before any file or socket is opened: the limit decides the connection cap below.
    let open_files =
        guard::raise_open_file_limit().context("the open-file limit (RLIMIT_NOFILE)")?;
    let rules = settings::load_rules(checked.rules.as_ref())?;
    let policy_sources = policy::PolicySources {
        clients: checked.clients.clone(),
        protocols: checked.protocols.clone(),
    };
    let policy = policy::Policy::load(&policy_sources)?;
    let metrics = Arc::new(Metrics::new(&policy.registry.ids()).context("metrics registry")?);
    metrics.register_purposes(&policy.purposes());
    metrics.set_snapshot_max_age(checked.max_age);
    let tls = match &checked.tls {
        Some(files) => {
            let counted = metrics.clone();
            // A handshake without a client certificate completes and is refused (counted, the
            // socket shut) in `on_connect` below: rustls refuses it silently otherwise.
            let mut config = crate::trust::tls::server_config_for_service(
                files,
                Arc::new(move || counted.tls_handshake_failed()),
            )?;
            config.alpn_protocols.clear();
            Some(config)
        }
        None => None,
    };
    let audit = match &checked.audit_dir {
        Some(dir) => Some(
            AuditLog::open(
                dir,
                AuditOptions {
                    metrics: Some(metrics.clone()),
                    ..checked.audit.clone()
                },
            )
            .with_context(|| {
                format!("cannot open the audit log in {} (audit.dir)", dir.display())
            })?,
        ),
        None => {
            tracing::warn!(
                "AUDIT LOG DISABLED (audit.enabled = false, development profile): answers leave \
                 unaudited; never use this with real callers"
            );
            None
        }
    };
    let state = Arc::new(AppState {
        store: SnapshotStore::default(),
        metrics: metrics.clone(),
        limits: Limits {
            body: checked.body,
            rest_batch_questions: checked.rest_batch_questions,
            xml: checked.xml.clone(),
        },
        references: References::default(),
        service_identificatie: checked.service_identificatie.clone(),
        policy: Arc::new(arc_swap::ArcSwap::from_pointee(policy)),
        policy_sources,
        development: checked.tls.is_none(),
        audit,
        compute: guard::Compute::new(server.compute_threads, server.request_time_budget),
        public_url: checked.public_url.clone(),
        trusted_proxies: checked.trusted_proxies.clone(),
        soap_source: soap_door::SourceCache::default(),
    });
    let reloader = Arc::new(Reloader::new(
        checked.origin.clone(),
        rules.clone(),
        state.clone(),
        checked.reload_timeout,
        checked.read_limits,
    ));

    match &checked.origin {
        SnapshotOrigin::Source(SnapshotSource::Redis(target)) => {
            // Redis may be down at start: serve (not ready, 30020) and keep trying.
            tracing::info!(redis = %target, "following the snapshot published in Redis");
            let install_state = state.clone();
            tokio::spawn(watch_redis(
                target.clone(),
                rules.clone(),
                WatchOptions {
                    poll_interval: checked.redis_poll,
                    limits: checked.read_limits,
                    ..WatchOptions::default()
                },
                metrics.clone(),
                move |loaded| {
                    let loaded = reload::install(&install_state, loaded.snapshot);
                    tracing::info!(snapshot_id = %loaded.snapshot_id, persons = loaded.persons,
                        "snapshot from Redis in use");
                },
            ));
        }
        origin => {
            // A file that cannot be loaded at start is an operator's error to see at once.
            if matches!(origin, SnapshotOrigin::Embedded) {
                tracing::warn!(
                    "no snapshot configured: serving the synthetic DEMO snapshot \
                     (data/demo-snapshot.jsonl); set snapshot.source or --snapshot for real data"
                );
            }
            reloader
                .reload()
                .await
                .map_err(|e| anyhow::anyhow!("cannot start: {e}"))?;
        }
    }

    if checked.tls.is_none() {
        tracing::warn!(
            listen = %checked.listen,
            "DEVELOPMENT PROFILE: plain HTTP without TLS or client certificates, loopback only; \
             never use this profile with real callers"
        );
    }

    spawn_sighup(reloader.clone());

    let workers = server.workers;
    let cap = guard::connection_cap(
        server.max_connections,
        open_files.soft,
        server.open_files_reserve,
    );
    // The guard (`guard::Connections`) keeps the open connections at `shed_at` below the cap by
    // shedding; actix-server's own count per worker is the backstop: a worker at its share stops
    // taking new ones (they wait in the listen backlog), so the file descriptors in reserve stay
    // free. The backstop has the shedding margin on top, so that connections being shed (still
    // counted by their worker until their task is dropped) do not stop the accepting: a paused
    // accept is what made other callers wait (SYN retransmitted after a second).
    let per_worker = cap.div_ceil(workers).max(1);
    tracing::info!(
        open_files = open_files.soft,
        open_files_hard = open_files.hard,
        max_connections = per_worker * workers,
        max_connections_per_peer = server.max_connections_per_peer,
        "client connection limits"
    );
    let cap = per_worker * workers;
    let limits = guard::ConnectionLimits {
        cap,
        max_per_peer: server.max_connections_per_peer,
        shed_at: guard::ConnectionLimits::shed_at(cap, server.shed_at_percent),
        head_timeout: server.request_head_timeout,
        pressure_head_timeout: server.pressure_head_timeout,
    };
    let connections = guard::Connections::new(limits, Some(metrics.clone()));
    let listener = client_listener(checked.listen)
        .with_context(|| format!("cannot listen on {} (server.listen)", checked.listen))?;
    let local = listener
        .local_addr()
        .with_context(|| format!("cannot listen on {} (server.listen)", checked.listen))?;
    let port = local.port();
    let data = web::Data::from(state.clone());
    // The client listener, assembled as actix-web's `HttpServer` assembles it, with the guard
    // in front: a connection is counted at accept, before its TLS handshake, and can be shed
    // while it handshakes or sends nothing (guard.rs).
    let keep_alive = server.keep_alive;
    let head_timeout = limits.head_timeout;
    let secure = tls.is_some();
    macro_rules! client_http {
        ($data:ident, $state:ident, $connections:ident) => {{
            use actix_service::{IntoServiceFactory, ServiceFactoryExt};
            let (state, guarded) = ($state.clone(), $connections.clone());
            let app = App::new()
                .app_data($data.clone())
                .wrap(actix_web::middleware::from_fn(guard::refuse_marked))
                .configure(client_routes)
                .into_factory()
                .map_err(|error: actix_web::Error| error.error_response());
            // The application's view of the listener, as `HttpServer` gives it (the scheme and
            // host of `connection_info`: the WSDL's address). `__priv_test_new` is actix-web's
            // public, hidden constructor of it.
            let host = local.to_string();
            actix_http::HttpService::build()
                .keep_alive(keep_alive)
                .client_request_timeout(head_timeout)
                .local_addr(local)
                .on_connect_ext(move |io: &_, extensions: &mut actix_web::dev::Extensions| {
                    on_connect(&state, &guarded, io as &dyn std::any::Any, extensions)
                })
                .finish(actix_service::map_config(app, move |_| {
                    actix_web::dev::AppConfig::__priv_test_new(secure, host.clone(), local)
                }))
        }};
    }
    let builder = actix_server::Server::build()
        .workers(workers)
        .max_concurrent_connections(per_worker + (limits.cap - limits.shed_at));
    let builder = match tls {
        Some(config) => builder.listen("kbi-advice-client", listener, {
            let (data, state) = (data.clone(), state.clone());
            let connections = connections.clone();
            move || {
                connections.wrap(client_http!(data, state, connections).rustls_0_23(config.clone()))
            }
        }),
        None => builder.listen("kbi-advice-client", listener, {
            let (data, state) = (data.clone(), state.clone());
            let connections = connections.clone();
            move || connections.wrap(client_http!(data, state, connections).tcp())
        }),
    }
    .with_context(|| format!("cannot listen on {} (server.listen)", checked.listen))?;
    let client = builder.run();

    let reloader_data = web::Data::new(reloader.clone());
    let ops = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(reloader_data.clone())
            .route("/metrics", web::get().to(ops::metrics))
            .route("/health/live", web::get().to(ops::live))
            .route("/health/ready", web::get().to(ops::ready))
            .route("/admin/snapshot/reload", web::post().to(ops::reload))
    })
    .workers(1)
    .bind(checked.ops_listen)
    .with_context(|| format!("cannot listen on {} (ops.listen)", checked.ops_listen))?;
    let ops_bound = ops.addrs().first().copied().unwrap_or(checked.ops_listen);
    // A `Server` starts accepting when it is first polled: in `run_until_stopped`.
    let ops = ops.run();
    Ok(Application {
        client,
        ops,
        port,
        ops_bound,
        listen: checked.listen,
        ops_listen: checked.ops_listen,
        workers,
        state,
    })
}

/// Listen backlog of the client listener: connections the kernel completes while the accept
/// loop is busy (under a connection flood, a full backlog drops SYNs and a caller waits for its
/// retransmission, a second). Capped by the kernel at `net.core.somaxconn` (4096 by default).
/// `std::net::TcpListener::bind` would give 128.
const CLIENT_BACKLOG: u32 = 4096;

/// The client listener's socket, bound with [`CLIENT_BACKLOG`] (address reuse as actix-server
/// sets it, so a restart does not wait for old connections in TIME_WAIT).
fn client_listener(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(CLIENT_BACKLOG)?.into_std()
}

/// Every new connection of the client listener, once HTTP starts on it: its slot (counted at
/// accept by `guard::Connections`; one over the per-peer limit is refused at its first request)
/// and, on TLS, its client certificate; a TLS connection without one is counted as a failed
/// handshake and shut before any HTTP is read.
fn on_connect(
    state: &AppState,
    connections: &guard::Connections,
    connection: &dyn std::any::Any,
    data: &mut actix_web::dev::Extensions,
) {
    type Tcp = actix_web::rt::net::TcpStream;
    type Tls = actix_tls::accept::rustls_0_23::TlsStream<Tcp>;
    if let Some(stream) = connection.downcast_ref::<Tls>() {
        let (tcp, session) = stream.get_ref();
        let mut slot = guard::ConnectionSlot::of(connections, tcp.peer_addr().ok());
        if crate::trust::tls::peer_certificate(session).is_none() {
            state.metrics.tls_handshake_failed();
            slot.refusal = Some(guard::Refusal::NoCertificate);
            guard::shut_down(tcp);
        }
        data.insert(slot);
        caller::on_connect(state, connection, data);
    } else if let Some(tcp) = connection.downcast_ref::<Tcp>() {
        data.insert(guard::ConnectionSlot::of(connections, tcp.peer_addr().ok()));
    }
}

/// The client listener's routes.
pub fn client_routes(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource(soap_door::PATH)
                .route(web::post().to(soap_door::post))
                .route(web::get().to(soap_door::get)),
        )
        .service(
            web::resource("/v1/integration-obligation:batch").route(web::post().to(rest::batch)),
        )
        // A static prefix, not the pattern `/{insz}`: actix matches a pattern with a dynamic
        // segment by regular expression on every request, a static prefix by comparing strings.
        // `rest::single` checks the rest of the path itself (docs/performance.md).
        .service(web::scope(rest::SINGLE_PREFIX).default_service(web::to(rest::single)))
        .route(
            "/openapi.json",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .insert_header((CONTENT_TYPE, "application/json"))
                    .body(OPENAPI)
            }),
        )
        .default_service(web::to(not_found));
}

/// The answer to a path no door serves.
pub(crate) async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .insert_header((CONTENT_TYPE, "application/problem+json"))
        .body(
            json!({
                "type": "about:blank",
                "title": "Not Found",
                "status": 404,
                "detail": "no such resource: see /openapi.json and the WSDL"
            })
            .to_string(),
        )
}

fn spawn_sighup(reloader: Arc<Reloader>) {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(mut hangups) => {
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading clients, protocols and the snapshot");
                    // The outcomes are logged and counted by the reloader.
                    let _ = reloader.reload_config();
                    let _ = reloader.reload().await;
                }
            });
        }
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP; reload with POST /admin/snapshot/reload")
        }
    }
}
