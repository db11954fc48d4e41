//! The service's configuration: `config/default.toml` (compiled in), then `--config FILE`, then
//! `KBI_ADVICE__SECTION__KEY` environment variables, then command-line flags. Every setting is
//! typed and checked here, so a bad value stops start-up with a message that names it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

use super::body::BodyLimits;
use crate::snapshot::SnapshotSource;
use kbi_audit::AuditOptions;
use kbi_core::domain::RuleSet;
use kbi_core::snapshot::reader::ReadLimits;
use kbi_wire::soap::XmlLimits;

/// The defaults, as shipped (and documented) in `config/default.toml`.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// Loads the rule set named by `--rules` (every subcommand that judges takes it), or the shipped
/// one. Here, with the other settings, so that both `serve` and the one-shot commands read it
/// the same way without the service reaching up into the command line.
pub fn load_rules(path: Option<&PathBuf>) -> anyhow::Result<Arc<RuleSet>> {
    let rules = match path {
        Some(path) => {
            let text = kbi_core::io::read_config_text(path)
                .with_context(|| format!("cannot read rules file {}", path.display()))?;
            RuleSet::from_toml(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => RuleSet::shipped(),
    };
    Ok(Arc::new(rules))
}

/// Every setting of `kbi-advice serve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub ops: OpsSettings,
    pub snapshot: SnapshotSettings,
    pub log: LogSettings,
    pub tls: TlsSettings,
    pub clients: ClientsSettings,
    pub protocols: ProtocolsSettings,
    pub audit: AuditSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    pub certificate: String,
    pub key: String,
    pub client_ca: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientsSettings {
    pub registry: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolsSettings {
    pub dir: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    pub dir: String,
    pub enabled: bool,
    pub segment_bytes: u64,
    pub preallocate: bool,
    pub checkpoint_key: String,
    pub checkpoint_interval_seconds: u64,
    pub inline_sync_records: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: String,
    pub workers: usize,
    pub body_limit_bytes: usize,
    pub rest_batch_max_questions: usize,
    pub soap_max_questions: usize,
    pub soap_max_depth: usize,
    pub soap_max_elements: usize,
    pub soap_max_attributes: usize,
    pub soap_max_namespace_declarations: usize,
    pub soap_max_namespaces_in_scope: usize,
    pub request_head_timeout_ms: u64,
    pub body_timeout_ms: u64,
    pub body_min_bytes_per_second: u64,
    pub request_time_budget_ms: u64,
    pub compute_threads: usize,
    pub max_connections: usize,
    pub max_connections_per_peer: usize,
    pub shed_at_percent: u64,
    pub pressure_head_timeout_ms: u64,
    pub open_files_reserve: u64,
    pub keep_alive_seconds: u64,
    pub service_identificatie: String,
    pub public_url: String,
    pub trusted_proxies: Vec<String>,
    pub plain_http: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsSettings {
    pub listen: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSettings {
    pub source: String,
    pub rules: String,
    pub max_age_seconds: u64,
    pub redis_poll_seconds: u64,
    pub max_line_bytes: usize,
    pub max_decompressed_bytes: u64,
    pub read_stall_timeout_seconds: u64,
    pub reload_timeout_seconds: u64,
}

impl SnapshotSettings {
    /// The reading limits of every snapshot load of the service.
    fn read_limits(&self) -> ReadLimits {
        ReadLimits {
            max_line_bytes: self.max_line_bytes,
            max_text_bytes: self.max_decompressed_bytes,
            stall_timeout: Duration::from_secs(self.read_stall_timeout_seconds),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Json,
    Text,
}

/// Values from the command line, which beat every other layer.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub ops_listen: Option<String>,
    pub snapshot: Option<String>,
}

/// Where the snapshot comes from, once the settings are checked.
#[derive(Debug, Clone)]
pub enum SnapshotOrigin {
    /// The demonstration snapshot compiled into the binary.
    Embedded,
    /// A file or Redis.
    Source(SnapshotSource),
}

/// The settings checked and converted to what the service uses.
#[derive(Debug, Clone)]
pub struct Checked {
    pub listen: SocketAddr,
    pub ops_listen: SocketAddr,
    pub origin: SnapshotOrigin,
    pub rules: Option<PathBuf>,
    pub max_age: Option<Duration>,
    /// `None` in the development profile (plain HTTP).
    pub tls: Option<crate::trust::TlsFiles>,
    /// `None`: the shipped development registry.
    pub clients: Option<PathBuf>,
    /// `None`: the shipped protocols (`config/protocols/`).
    pub protocols: Option<PathBuf>,
    /// `None` when the audit log is disabled (development profile only).
    pub audit_dir: Option<PathBuf>,
    /// How the audit log is opened (`[audit]`); the service adds its metrics as the observer.
    pub audit: AuditOptions,
    /// Peers whose `Forwarded` / `X-Forwarded-*` headers are believed (the WSDL address).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Request bodies: size, deadline, slowest rate.
    pub body: BodyLimits,
    /// What a SOAP request may make the parser do.
    pub xml: XmlLimits,
    /// Most questions in one REST batch.
    pub rest_batch_questions: usize,
    /// Bounds on reading a snapshot (every load of the service: start, reload, Redis).
    pub read_limits: ReadLimits,
    /// A reload running longer is abandoned.
    pub reload_timeout: Duration,
    /// How often Redis's `current` is read without a notification.
    pub redis_poll: Duration,
    /// The client listener's connections, workers and threads.
    pub server: ServerOptions,
    /// `Identificatie` of this service in SOAP replies.
    pub service_identificatie: String,
    /// The WSDL's address when set (no trailing `/`); `None`: the address the caller used.
    pub public_url: Option<String>,
    pub log: LogSettings,
}

/// The client listener's connection handling, resolved from `[server]` (0 = one per core already
/// replaced by the count).
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// actix-web workers.
    pub workers: usize,
    /// Threads judging requests (the compute pool).
    pub compute_threads: usize,
    /// Most time one request may spend being judged.
    pub request_time_budget: Duration,
    /// `server.max_connections` (capped at start-up by the open-file limit).
    pub max_connections: usize,
    pub max_connections_per_peer: usize,
    /// File descriptors kept free of client connections.
    pub open_files_reserve: u64,
    pub keep_alive: Duration,
    /// Time allowed for a request's head.
    pub request_head_timeout: Duration,
    /// `server.shed_at_percent` (1..=100): the share of the connection cap at which the guard
    /// starts shedding.
    pub shed_at_percent: u64,
    /// Time allowed for a request's head while the listener is under pressure; already capped
    /// at `request_head_timeout` (a shorter limit under pressure, never a longer one).
    pub pressure_head_timeout: Duration,
}

/// `0` means one per CPU core (workers, compute threads): resolved once, here.
fn one_per_core_if_zero(configured: usize) -> usize {
    match configured {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    }
}

/// A configuration error in fixed words: the setting's name and what was expected, never the
/// value given (the config crate's own message quotes it, whatever it is).
fn describe(error: &config::ConfigError) -> String {
    use config::ConfigError;
    let at = |key: &Option<String>| {
        key.as_deref()
            .map(|k| format!("{}: ", kbi_core::redact::setting_name(k)))
            .unwrap_or_default()
    };
    match error {
        ConfigError::Type { key, expected, .. } => format!("{}expected {expected}", at(key)),
        ConfigError::At { error, key, .. } => format!("{}{}", at(key), describe(error)),
        ConfigError::NotFound(key) => {
            format!("{} is missing", kbi_core::redact::setting_name(key))
        }
        ConfigError::Message(message) => kbi_core::redact::describe_data(message),
        ConfigError::FileParse { .. } => "a configuration file is not valid TOML".into(),
        _ => "the configuration cannot be read".into(),
    }
}

impl Settings {
    /// Layers the defaults, `config_file`, the environment (`env`: name/value pairs, normally
    /// `std::env::vars()`) and `overrides`, then checks the result.
    pub fn load(
        config_file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> anyhow::Result<Checked> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(path) = config_file {
            if !path.is_file() {
                if path.exists() {
                    bail!(
                        "configuration file {} is not a regular file (a FIFO, device or \
                         directory): refused without reading it",
                        path.display()
                    );
                }
                bail!("configuration file {} does not exist", path.display());
            }
            // The config crate's syntax errors quote the file; checked here first, they name
            // the line and column only.
            let text = kbi_core::io::read_config_text(path)
                .with_context(|| format!("cannot read configuration file {}", path.display()))?;
            if let Err(error) = kbi_core::redact::toml::<toml::Table>(&text) {
                bail!("configuration file {}: {error}", path.display());
            }
            builder = builder.add_source(
                config::File::from(path.to_path_buf()).format(config::FileFormat::Toml),
            );
        }
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(name, _)| name.starts_with("KBI_ADVICE__"))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("KBI_ADVICE")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(env)),
        );
        if let Some(listen) = &overrides.listen {
            builder = builder.set_override("server.listen", listen.as_str())?;
        }
        if let Some(listen) = &overrides.ops_listen {
            builder = builder.set_override("ops.listen", listen.as_str())?;
        }
        if let Some(source) = &overrides.snapshot {
            builder = builder.set_override("snapshot.source", source.as_str())?;
        }
        let settings: Settings = builder
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| anyhow::anyhow!("invalid configuration: {}", describe(&e)))?;
        settings.check()
    }

    fn check(self) -> anyhow::Result<Checked> {
        let listen: SocketAddr = self
            .server
            .listen
            .parse()
            .with_context(|| "server.listen is not IP:PORT".to_string())?;
        let ops_listen: SocketAddr = self
            .ops
            .listen
            .parse()
            .context("ops.listen is not IP:PORT")?;
        if self.server.plain_http && !listen.ip().is_loopback() {
            bail!(
                "server.plain_http = true is only allowed on a loopback address, \
                 not on server.listen {listen}: configure TLS for any other address"
            );
        }
        let positive = [
            ("server.body_limit_bytes", self.server.body_limit_bytes),
            (
                "server.rest_batch_max_questions",
                self.server.rest_batch_max_questions,
            ),
            ("server.soap_max_questions", self.server.soap_max_questions),
            ("server.soap_max_depth", self.server.soap_max_depth),
            ("server.soap_max_elements", self.server.soap_max_elements),
            (
                "server.soap_max_attributes",
                self.server.soap_max_attributes,
            ),
            (
                "server.soap_max_namespace_declarations",
                self.server.soap_max_namespace_declarations,
            ),
            (
                "server.soap_max_namespaces_in_scope",
                self.server.soap_max_namespaces_in_scope,
            ),
            ("server.max_connections", self.server.max_connections),
            (
                "server.max_connections_per_peer",
                self.server.max_connections_per_peer,
            ),
        ];
        for (name, value) in positive {
            if value == 0 {
                bail!("{name} must be at least 1");
            }
        }
        // actix-web panics above 512 workers: a clear refusal instead.
        if self.server.workers > 512 {
            bail!("server.workers must be at most 512 (0 = one per CPU core)");
        }
        if !(1..=100).contains(&self.server.shed_at_percent) {
            // The value is not quoted: a setting's error never repeats what was given.
            bail!("server.shed_at_percent must be 1..=100");
        }
        let positive_ms = [
            (
                "server.request_head_timeout_ms",
                self.server.request_head_timeout_ms,
            ),
            (
                "server.pressure_head_timeout_ms",
                self.server.pressure_head_timeout_ms,
            ),
            ("server.body_timeout_ms", self.server.body_timeout_ms),
            (
                "server.body_min_bytes_per_second",
                self.server.body_min_bytes_per_second,
            ),
            (
                "server.request_time_budget_ms",
                self.server.request_time_budget_ms,
            ),
        ];
        for (name, value) in positive_ms {
            if value == 0 {
                bail!("{name} must be at least 1");
            }
        }
        let public_url = self.server.public_url.trim();
        let has_scheme = public_url.starts_with("https://") || public_url.starts_with("http://");
        if !public_url.is_empty() && !has_scheme {
            bail!("server.public_url must start with https:// or http:// (or be empty)");
        }
        if public_url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            bail!("server.public_url must not contain spaces or control characters");
        }
        let trusted_proxies = self
            .server
            .trusted_proxies
            .iter()
            .enumerate()
            .map(|(i, text)| {
                text.trim().parse::<std::net::IpAddr>().map_err(|_| {
                    anyhow::anyhow!(
                        "server.trusted_proxies entry {} is not an IP address",
                        i + 1
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if self.snapshot.redis_poll_seconds == 0 {
            bail!("snapshot.redis_poll_seconds must be at least 1");
        }
        let snapshot_positive = [
            (
                "snapshot.max_line_bytes",
                self.snapshot.max_line_bytes as u64,
            ),
            (
                "snapshot.max_decompressed_bytes",
                self.snapshot.max_decompressed_bytes,
            ),
            (
                "snapshot.read_stall_timeout_seconds",
                self.snapshot.read_stall_timeout_seconds,
            ),
            (
                "snapshot.reload_timeout_seconds",
                self.snapshot.reload_timeout_seconds,
            ),
        ];
        for (name, value) in snapshot_positive {
            if value == 0 {
                bail!("{name} must be at least 1");
            }
        }
        let id = &self.server.service_identificatie;
        if id.is_empty() || id.len() > kbi_wire::soap::MAX_IDENTIFICATIE {
            bail!("server.service_identificatie must be 1 to 128 characters");
        }
        let origin = if self.snapshot.source.trim().is_empty() {
            SnapshotOrigin::Embedded
        } else {
            SnapshotOrigin::Source(
                self.snapshot
                    .source
                    .parse()
                    .map_err(|e| anyhow::anyhow!("snapshot.source: {e}"))?,
            )
        };
        let rules = (!self.snapshot.rules.trim().is_empty())
            .then(|| PathBuf::from(self.snapshot.rules.trim()));
        let max_age = (self.snapshot.max_age_seconds > 0)
            .then(|| Duration::from_secs(self.snapshot.max_age_seconds));
        let path = |text: &str| (!text.trim().is_empty()).then(|| PathBuf::from(text.trim()));
        let tls = if self.server.plain_http {
            None
        } else {
            let (Some(certificate), Some(key), Some(client_ca)) = (
                path(&self.tls.certificate),
                path(&self.tls.key),
                path(&self.tls.client_ca),
            ) else {
                bail!(
                    "server.plain_http = false needs tls.certificate, tls.key and tls.client_ca \
                     (PEM files)"
                );
            };
            Some(crate::trust::TlsFiles {
                certificate,
                key,
                client_ca,
            })
        };
        if !self.audit.enabled && !self.server.plain_http {
            bail!(
                "audit.enabled = false is only accepted in the development profile \
                 (server.plain_http = true): no answer leaves the service unaudited"
            );
        }
        if self.audit.segment_bytes < kbi_audit::log::MIN_SEGMENT_BYTES {
            bail!(
                "audit.segment_bytes must be at least {}",
                kbi_audit::log::MIN_SEGMENT_BYTES
            );
        }
        if self.audit.checkpoint_interval_seconds == 0 {
            bail!("audit.checkpoint_interval_seconds must be at least 1");
        }
        let audit_dir = if self.audit.enabled {
            Some(path(&self.audit.dir).ok_or_else(|| anyhow::anyhow!("audit.dir is empty"))?)
        } else {
            None
        };
        let clients = path(&self.clients.registry);
        let server = &self.server;
        let protocols = path(&self.protocols.dir);
        Ok(Checked {
            listen,
            ops_listen,
            origin,
            rules,
            max_age,
            tls,
            clients,
            protocols,
            audit_dir,
            audit: AuditOptions {
                metrics: None,
                segment_bytes: self.audit.segment_bytes,
                preallocate: self.audit.preallocate,
                checkpoint_key: path(&self.audit.checkpoint_key),
                checkpoint_interval: Duration::from_secs(self.audit.checkpoint_interval_seconds),
                inline_sync_records: self.audit.inline_sync_records,
                ..AuditOptions::default()
            },
            trusted_proxies,
            body: BodyLimits {
                bytes: server.body_limit_bytes,
                timeout: Duration::from_millis(server.body_timeout_ms),
                min_bytes_per_second: server.body_min_bytes_per_second,
            },
            xml: XmlLimits {
                max_depth: server.soap_max_depth,
                max_elements: server.soap_max_elements,
                max_questions: server.soap_max_questions,
                max_attributes: server.soap_max_attributes,
                max_namespace_declarations: server.soap_max_namespace_declarations,
                max_namespaces_in_scope: server.soap_max_namespaces_in_scope,
            },
            rest_batch_questions: server.rest_batch_max_questions,
            read_limits: self.snapshot.read_limits(),
            reload_timeout: Duration::from_secs(self.snapshot.reload_timeout_seconds),
            redis_poll: Duration::from_secs(self.snapshot.redis_poll_seconds),
            server: ServerOptions {
                workers: one_per_core_if_zero(server.workers),
                compute_threads: one_per_core_if_zero(server.compute_threads),
                request_time_budget: Duration::from_millis(server.request_time_budget_ms),
                max_connections: server.max_connections,
                max_connections_per_peer: server.max_connections_per_peer,
                open_files_reserve: server.open_files_reserve,
                keep_alive: Duration::from_secs(server.keep_alive_seconds),
                request_head_timeout: Duration::from_millis(server.request_head_timeout_ms),
                shed_at_percent: server.shed_at_percent,
                pressure_head_timeout: Duration::from_millis(
                    server
                        .pressure_head_timeout_ms
                        .min(server.request_head_timeout_ms),
                ),
            },
            service_identificatie: server.service_identificatie.clone(),
            public_url: Some(public_url.trim_end_matches('/').to_owned())
                .filter(|url| !url.is_empty()),
            log: self.log,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)], overrides: &Overrides) -> anyhow::Result<Checked> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Settings::load(None, env, overrides)
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let checked = load(&[], &Overrides::default()).unwrap();
        assert_eq!(checked.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(checked.ops_listen.to_string(), "127.0.0.1:9090");
        assert!(matches!(checked.origin, SnapshotOrigin::Embedded));
        assert_eq!(checked.body.bytes, 1 << 20);
        assert_eq!(checked.max_age, None);
    }

    #[test]
    fn environment_overrides_file_and_flags_override_environment() {
        let checked = load(
            &[
                ("KBI_ADVICE__SERVER__BODY_LIMIT_BYTES", "2048"),
                ("KBI_ADVICE__SERVER__LISTEN", "127.0.0.1:1111"),
                ("KBI_ADVICE__SNAPSHOT__MAX_AGE_SECONDS", "60"),
            ],
            &Overrides {
                listen: Some("127.0.0.1:2222".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(checked.body.bytes, 2048);
        assert_eq!(checked.listen.to_string(), "127.0.0.1:2222");
        assert_eq!(checked.max_age, Some(Duration::from_secs(60)));
    }

    #[test]
    fn bad_values_are_refused_with_the_setting_named() {
        let error = load(
            &[("KBI_ADVICE__SERVER__BODY_LIMIT_BYTES", "lots")],
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(
            format!("{error:#}").contains("body_limit_bytes"),
            "{error:#}"
        );

        let error = load(
            &[("KBI_ADVICE__SERVER__LISTEN", "localhost")],
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(format!("{error:#}").contains("server.listen"), "{error:#}");

        let error = load(
            &[("KBI_ADVICE__SERVER__NO_SUCH", "1")],
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(format!("{error:#}").contains("no_such"), "{error:#}");
    }

    #[test]
    fn connection_shedding_is_typed_once_and_checked() {
        let checked = load(&[], &Overrides::default()).unwrap();
        assert_eq!(checked.server.shed_at_percent, 90);
        assert_eq!(
            checked.server.pressure_head_timeout,
            Duration::from_millis(1000)
        );
        // Under pressure the head timeout is shortened, never lengthened.
        let checked = load(
            &[
                ("KBI_ADVICE__SERVER__REQUEST_HEAD_TIMEOUT_MS", "400"),
                ("KBI_ADVICE__SERVER__PRESSURE_HEAD_TIMEOUT_MS", "5000"),
            ],
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            checked.server.pressure_head_timeout,
            Duration::from_millis(400)
        );
        for (key, value) in [
            ("KBI_ADVICE__SERVER__SHED_AT_PERCENT", "0"),
            ("KBI_ADVICE__SERVER__SHED_AT_PERCENT", "85073003328"),
            ("KBI_ADVICE__SERVER__PRESSURE_HEAD_TIMEOUT_MS", "0"),
        ] {
            let error = load(&[(key, value)], &Overrides::default()).unwrap_err();
            let text = format!("{error:#}");
            let name = key
                .trim_start_matches("KBI_ADVICE__SERVER__")
                .to_lowercase();
            assert!(text.contains(&name), "{text}");
            assert!(!text.contains("85073003328"), "{text}");
        }
    }

    #[test]
    fn production_needs_tls_files_and_the_audit_log() {
        let error = load(
            &[("KBI_ADVICE__SERVER__PLAIN_HTTP", "false")],
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(
            format!("{error:#}").contains("tls.certificate"),
            "{error:#}"
        );
        let error = load(
            &[
                ("KBI_ADVICE__SERVER__PLAIN_HTTP", "false"),
                ("KBI_ADVICE__TLS__CERTIFICATE", "s.pem"),
                ("KBI_ADVICE__TLS__KEY", "k.pem"),
                ("KBI_ADVICE__TLS__CLIENT_CA", "ca.pem"),
                ("KBI_ADVICE__AUDIT__ENABLED", "false"),
            ],
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(format!("{error:#}").contains("audit.enabled"), "{error:#}");
        let checked = load(&[], &Overrides::default()).unwrap();
        assert_eq!(checked.audit_dir, Some(PathBuf::from("audit")));
        assert!(checked.tls.is_none());
    }

    #[test]
    fn hostile_input_limits_are_checked_with_their_names() {
        let checked = load(&[], &Overrides::default()).unwrap();
        let server = &checked.server;
        assert_eq!(
            (server.max_connections_per_peer, server.open_files_reserve),
            (256, 256)
        );
        assert!(checked.trusted_proxies.is_empty());
        for (name, value, named) in [
            (
                "KBI_ADVICE__SERVER__BODY_TIMEOUT_MS",
                "0",
                "server.body_timeout_ms",
            ),
            (
                "KBI_ADVICE__SERVER__SOAP_MAX_NAMESPACE_DECLARATIONS",
                "0",
                "server.soap_max_namespace_declarations",
            ),
            (
                "KBI_ADVICE__SERVER__MAX_CONNECTIONS_PER_PEER",
                "0",
                "server.max_connections_per_peer",
            ),
            (
                "KBI_ADVICE__SERVER__PUBLIC_URL",
                "ftp://x",
                "server.public_url",
            ),
        ] {
            let error = load(&[(name, value)], &Overrides::default()).unwrap_err();
            assert!(format!("{error:#}").contains(named), "{error:#}");
        }
    }

    #[test]
    fn plain_http_is_refused_off_loopback() {
        let error = load(
            &[("KBI_ADVICE__SERVER__LISTEN", "0.0.0.0:8080")],
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(format!("{error:#}").contains("plain_http"), "{error:#}");
    }
}
