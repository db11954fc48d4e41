//! `kbi-advice serve`: the HTTP adapters around the core. Two listeners: the client listener
//! (SOAP, REST, OpenAPI) and the operations listener (metrics, health, reload).
//!
//! One request: actix-web routes it to [`soap_door`] or [`rest`]; the handler takes the
//! snapshot in use from [`state::SnapshotStore`] (an `Arc`, so a swap never disturbs it), asks
//! the core, records metrics and answers. [`reload`] builds new snapshots beside the old one.

pub mod body;
pub mod caller;
pub mod ops;
pub mod reload;
pub mod rest;
pub mod settings;
pub mod soap_door;
pub mod state;

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context;
use serde_json::json;

use crate::api::soap::XmlLimits;
use crate::audit::{AuditLog, AuditOptions};
use crate::snapshot::redis::{watch_redis, RedisWatchStatus, WatchOptions};
use crate::snapshot::SnapshotSource;
use crate::telemetry::metrics::Metrics;
use crate::trust::{ClientRegistry, RateLimiter};
use reload::Reloader;
use settings::{Checked, SnapshotOrigin};
use state::{AppState, Limits, References, SnapshotStore};

/// The OpenAPI 3.1 description of the REST door (`GET /openapi.json`).
pub const OPENAPI: &str = include_str!("../../api/openapi.json");

/// Runs the service until it is stopped (SIGINT/SIGTERM).
pub fn run(checked: Checked) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(serve(checked))
}

async fn serve(checked: Checked) -> anyhow::Result<()> {
    let server = &checked.settings.server;
    let rules = crate::cli::load_rules(checked.rules.as_ref())?;
    let registry = Arc::new(match &checked.clients {
        Some(path) => ClientRegistry::from_file(path).context("clients.registry")?,
        None => ClientRegistry::shipped().context("the shipped client registry")?,
    });
    let metrics = Arc::new(Metrics::new(&registry.ids()).context("metrics registry")?);
    metrics.set_snapshot_max_age(checked.max_age);
    let tls = match &checked.tls {
        Some(files) => {
            let counted = metrics.clone();
            let mut config = crate::trust::tls::server_config_observed(
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
                    ..AuditOptions::default()
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
            body_bytes: server.body_limit_bytes,
            rest_batch_questions: server.rest_batch_max_questions,
            xml: XmlLimits {
                max_depth: server.soap_max_depth,
                max_elements: server.soap_max_elements,
                max_questions: server.soap_max_questions,
            },
        },
        references: References::default(),
        service_identificatie: server.service_identificatie.clone(),
        limiter: RateLimiter::new(&registry),
        registry: registry.clone(),
        development: checked.tls.is_none(),
        audit,
    });
    crate::snapshot::reader::set_limits(checked.settings.snapshot.read_limits());
    let reloader = Arc::new(Reloader::new(
        checked.origin.clone(),
        rules.clone(),
        state.clone(),
        Duration::from_secs(checked.settings.snapshot.reload_timeout_seconds),
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
                    poll_interval: Duration::from_secs(
                        checked.settings.snapshot.redis_poll_seconds,
                    ),
                    ..WatchOptions::default()
                },
                Some(metrics.clone()),
                Arc::new(RedisWatchStatus::default()),
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

    let workers = match server.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let data = web::Data::from(state.clone());
    let client = HttpServer::new({
        let data = data.clone();
        move || App::new().app_data(data.clone()).configure(client_routes)
    })
    .workers(workers)
    .keep_alive(Duration::from_secs(server.keep_alive_seconds))
    .client_request_timeout(Duration::from_millis(server.request_head_timeout_ms));
    let client = match tls {
        Some(config) => {
            let registry = registry.clone();
            client
                .on_connect(move |connection, data| caller::on_connect(&registry, connection, data))
                .bind_rustls_0_23(checked.listen, config)
        }
        None => client.bind(checked.listen),
    }
    .with_context(|| format!("cannot listen on {} (server.listen)", checked.listen))?
    .run();

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
    .with_context(|| format!("cannot listen on {} (ops.listen)", checked.ops_listen))?
    .run();

    tracing::info!(listen = %checked.listen, ops_listen = %checked.ops_listen, workers, "serving");
    tokio::try_join!(client, ops)?;
    tracing::info!("stopped");
    Ok(())
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
        .service(
            web::resource("/v1/integration-obligation/{insz}").route(web::get().to(rest::single)),
        )
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

async fn not_found() -> HttpResponse {
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
                    tracing::info!("SIGHUP: reloading the snapshot");
                    // The outcome is logged and counted by the reloader.
                    let _ = reloader.reload().await;
                }
            });
        }
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP; reload with POST /admin/snapshot/reload")
        }
    }
}
