//! The framework floor for `load-tests/run`: an actix-web server whose one handler does nothing
//! but return a constant body the size of a REST answer, with the same worker count and
//! keep-alive as `kbi-advice serve`. REST throughput is compared with this (target ≥ 0.8×).
//!
//! `cargo run --release --example floor -- 127.0.0.1:8181 [workers]`

use actix_web::{web, App, HttpResponse, HttpServer};

/// A REST answer's length (a NOK answer with its reason is about 380 bytes).
const BODY: &str = concat!(
    r#"{"insz":"90011510383","reference_date":"2026-01-01","subject":true,"compliant":false,"#,
    r#""result":"NOK","reason":{"code":"NIET_AANGEMELD","nl":"Niet tijdig aangemeld bij een "#,
    r#"agentschap Integratie en Inburgering","en":"Did not register with an integration agency "#,
    r#"in time"},"source":{"snapshot_id":"demo-2026-11-01","extracted_at":"2026-11-01T02:00:00Z","#,
    r#""rule_set":"kbi-rules-2022.2"}}"#
);

async fn floor() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(BODY)
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8181".into());
    let workers: usize = args
        .next()
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| App::new().default_service(web::to(floor)))
            .workers(workers)
            .bind(&listen)?
            .run()
            .await
    })
}
