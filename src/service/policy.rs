//! Who may ask what: the client registry and the protocols, validated together and swapped in
//! as one on reload (`SIGHUP`, `POST /admin/snapshot/reload`). An invalid registry or protocol
//! file keeps the policy in use, is logged and counted (`kbi_config_reloads_total{outcome}`);
//! readiness is about snapshots and does not change.
//!
//! The per-question check is [`Admit`], one small function the doors pass to the judge: after
//! the INSZ (30001) and the reference (30002) are read and before the snapshot's own checks
//! (30003, 30004), as `protocols.md` section 2 orders them.

use std::cell::{Cell, OnceCell};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::NaiveDate;
use kbi_core::domain::{Admission, ProtocolRefusal, Reference, RefusalText};
use kbi_protocol::{Binding, ProtocolSet};

use kbi_trust::{Client, ClientRegistry, RateLimiter};

/// Where the policy is read from (`clients.registry`, `protocols.dir`; `None`: shipped).
#[derive(Debug, Clone, Default)]
pub struct PolicySources {
    pub clients: Option<PathBuf>,
    pub protocols: Option<PathBuf>,
}

/// The registry, the protocols and each client's binding, consistent with each other.
pub struct Policy {
    pub registry: ClientRegistry,
    pub protocols: ProtocolSet,
    /// One per client, in registry order.
    bindings: Vec<Binding>,
    /// Per-client token buckets (new buckets, full, after a reload).
    pub limiter: RateLimiter,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("clients", &self.registry.ids())
            .field("protocols", &self.protocols.ids())
            .finish_non_exhaustive()
    }
}

impl Policy {
    /// Reads both sources and binds every client to its protocol; refuses a client whose
    /// protocol or purpose does not exist (naming the client, the protocol and the purpose).
    pub fn load(sources: &PolicySources) -> anyhow::Result<Policy> {
        let registry = match &sources.clients {
            Some(path) => ClientRegistry::from_file(path).context("clients.registry")?,
            None => ClientRegistry::shipped().context("the shipped client registry")?,
        };
        let protocols = crate::cli::protocol::load_dir(sources.protocols.as_deref())?;
        Policy::bind(registry, protocols)
    }

    /// [`Policy::load`] from values already read.
    pub fn bind(registry: ClientRegistry, protocols: ProtocolSet) -> anyhow::Result<Policy> {
        let mut bindings = Vec::with_capacity(registry.clients().len());
        for client in registry.clients() {
            let Some(protocol) = protocols.get(&client.protocol) else {
                bail!(
                    "client {}: protocol `{}` is not one of the protocol files ({}); \
                     see docs/protocols.md",
                    client.id,
                    client.protocol,
                    protocols.ids().join(", ")
                );
            };
            let purposes = match &client.purposes {
                Some(names) => {
                    let mut purposes = Vec::with_capacity(names.len());
                    for name in names {
                        let Some(purpose) = protocol.purpose(name) else {
                            bail!(
                                "client {}: purpose `{name}` is not a purpose of protocol `{}`; \
                                 see docs/protocols.md",
                                client.id,
                                protocol.id
                            );
                        };
                        purposes.push(purpose.name.clone());
                    }
                    Some(purposes)
                }
                None => None,
            };
            bindings.push(Binding {
                protocol: protocol.clone(),
                purposes,
            });
        }
        let limiter = RateLimiter::new(&registry);
        Ok(Policy {
            registry,
            protocols,
            bindings,
            limiter,
        })
    }

    /// The binding of the registry's `index`th client (each client has one).
    pub fn binding_at(&self, index: usize) -> &Binding {
        &self.bindings[index]
    }

    /// The binding of `client` (a client of this policy's registry).
    pub fn binding(&self, client: &Client) -> Option<&Binding> {
        let index = self
            .registry
            .clients()
            .iter()
            .position(|c| std::ptr::eq(c, client))?;
        self.bindings.get(index)
    }

    /// Every purpose name of every protocol (the bounded `purpose` label set).
    pub fn purposes(&self) -> Vec<Arc<str>> {
        let mut names: Vec<Arc<str>> = self
            .protocols
            .iter()
            .flat_map(|p| p.questions.iter().map(|q| q.name.clone()))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// The doors' per-question check: `binding` on `asked_on` ([`Admission`] for the judge).
pub struct Admit<'a> {
    binding: &'a Binding,
    asked_on: NaiveDate,
    /// Per form (a reference date, a premium year): the purpose when it is open that day
    /// ([`Binding::open_purpose`]), worked out at the request's first question of that form and
    /// kept for the others, so that a question costs only its window's comparisons and a request
    /// pays only for the forms it asks; inner `None`: refused, and [`Binding::admit`] says why.
    open: [OnceCell<Option<&'a kbi_protocol::Purpose>>; 2],
}

impl<'a> Admit<'a> {
    /// The check for `binding`'s questions asked today.
    pub fn today(binding: &'a Binding) -> Self {
        Admit::on(binding, today())
    }

    /// The check for `binding`'s questions asked on `asked_on`.
    pub fn on(binding: &'a Binding, asked_on: NaiveDate) -> Self {
        Admit {
            binding,
            asked_on,
            open: [OnceCell::new(), OnceCell::new()],
        }
    }
}

/// The local calendar day (`cli::protocol::today`), worked out at most once a UTC minute per
/// thread: `chrono::Local` consults the time zone on every call, which every request would pay,
/// and a local day always changes on a minute boundary. In between, a request only reads the
/// monotonic clock and compares it with the end of the cached minute (no calendar arithmetic,
/// no shared word). A step of the wall clock (NTP) is seen at the next cached minute's end.
fn today() -> NaiveDate {
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
    thread_local! {
        static CACHED: Cell<Option<(Instant, NaiveDate)>> = const { Cell::new(None) };
    }
    let now = Instant::now();
    CACHED.with(|cached| match cached.get() {
        Some((until, day)) if now < until => day,
        _ => {
            // The wall clock first, then the day: a minute that ends in between gives the new
            // day a moment early, never the old one for a whole minute.
            let since = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let into_minute = Duration::new(since.as_secs() % 60, since.subsec_nanos());
            let day = crate::cli::protocol::today();
            cached.set(Some((now + (Duration::from_secs(60) - into_minute), day)));
            day
        }
    })
}

impl Admission for Admit<'_> {
    #[inline]
    fn admit(&self, reference: Reference) -> Result<Option<Arc<str>>, ProtocolRefusal> {
        let (form, asks) = match reference {
            Reference::Date(_) => (0, kbi_protocol::Asks::Date),
            Reference::PremiumYear(_) => (1, kbi_protocol::Asks::PremiumYear),
        };
        let open = self.open[form].get_or_init(|| self.binding.open_purpose(self.asked_on, asks));
        if let Some(purpose) = *open {
            if purpose.window.admits(reference) {
                return Ok(Some(purpose.name.clone()));
            }
        }
        // Refused: the full check, for its reason (and the same answer by construction).
        match self.binding.admit(self.asked_on, reference) {
            Ok(purpose) => Ok(Some(purpose.clone())),
            Err(refusal) => Err(ProtocolRefusal {
                purpose: refusal
                    .purpose()
                    .cloned()
                    .or_else(|| self.binding.purpose_of(reference).cloned()),
                text: Box::new(RefusalText {
                    en: refusal.to_string(),
                    nl: refusal.diagnose_nl(),
                }),
            }),
        }
    }
}

/// Reads the policy again and swaps it in; on error the policy in use stays. Logged and counted.
pub fn reload(state: &super::state::AppState) -> Result<(), String> {
    match Policy::load(&state.policy_sources) {
        Ok(policy) => {
            state.metrics.register_purposes(&policy.purposes());
            tracing::info!(
                clients = policy.registry.clients().len(),
                protocols = %policy.protocols.ids().join(","),
                "clients and protocols reloaded"
            );
            state.policy.store(Arc::new(policy));
            state.metrics.config_reload(true);
            Ok(())
        }
        Err(error) => {
            let error = format!("{error:#}");
            tracing::error!(%error, "clients or protocols refused: the ones in use stay");
            state.metrics.config_reload(false);
            Err(error)
        }
    }
}

/// `path` unless empty.
pub fn configured(path: &str) -> Option<&Path> {
    Some(Path::new(path.trim())).filter(|p| !p.as_os_str().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_day_is_the_local_day() {
        // Twice: the first call fills the cache, the second reads it.
        for _ in 0..2 {
            let (before, cached, after) = (
                crate::cli::protocol::today(),
                today(),
                crate::cli::protocol::today(),
            );
            assert!(
                cached == before || cached == after,
                "{cached} vs {before}/{after}"
            );
        }
    }
}
