//! Who calls, and may they: identification (client certificate, or in the development profile
//! the SOAP `Afzender` / REST `X-Client-Id`), authorisation against the client registry, and the
//! per-client rate limit. Identity comes from the certificate, never from the body, except in the
//! development profile where there is no certificate to go by (`security-and-audit.md`).

use std::any::Any;
use std::cell::RefCell;
use std::sync::Arc;

use actix_web::dev::Extensions;
use actix_web::HttpRequest;
use arc_swap::cache::Cache;
use arc_swap::ArcSwap;

use super::policy::{Admit, Policy};
use super::state::AppState;
use kbi_core::domain::{Admission, AdmittedCaller, ErrorCode};
use kbi_protocol::Binding;
use kbi_trust::{Client, Operation};

/// The registered client of a TLS connection, resolved once per connection from its certificate
/// (`None`: a valid certificate that is not in the registry).
#[derive(Debug, Clone)]
pub struct PeerClient(pub Option<String>);

/// An admitted caller: its client and protocol binding, in the policy it was admitted under (a
/// reload in the meantime does not change a request in flight).
#[derive(Clone)]
pub struct Admitted {
    policy: Arc<Policy>,
    index: usize,
}

/// The policy in use ([`AppState::policy`]) through this thread's `arc_swap::Cache` of it: one
/// relaxed load of the current pointer and a reference count, instead of `ArcSwap::load`'s debt
/// slot or `load_full` per request (the protocol check's budget, BENCHMARKS.md). A reload is
/// seen at the thread's next request, as with `load`; the cache keeps the previous policy alive
/// until then. A thread serving another `AppState` (tests start several) starts a new cache.
fn current_policy(state: &AppState) -> Arc<Policy> {
    type PolicyCache = Cache<Arc<ArcSwap<Policy>>, Arc<Policy>>;
    thread_local! {
        static CACHE: RefCell<Option<PolicyCache>> = const { RefCell::new(None) };
    }
    CACHE.with(|cell| {
        let mut cell = cell.borrow_mut();
        match &mut *cell {
            Some(cache) if std::ptr::eq(cache.arc_swap(), &*state.policy) => cache.load().clone(),
            slot => slot.insert(Cache::new(state.policy.clone())).load().clone(),
        }
    })
}

impl Admitted {
    /// `client`'s place in `policy`'s registry (where its binding is).
    fn index(policy: &Policy, client: &Client) -> Option<usize> {
        policy
            .registry
            .clients()
            .iter()
            .position(|c| std::ptr::eq(c, client))
    }

    pub fn client(&self) -> &Client {
        &self.policy.registry.clients()[self.index]
    }

    /// The client's protocol binding (every client has one: [`Policy::bind`]).
    pub fn binding(&self) -> &Binding {
        self.policy.binding_at(self.index)
    }
}

/// The per-question check of an admitted caller's request: its protocol, on today's date
/// (30005), in the one judging step of either door.
impl AdmittedCaller for Admitted {
    fn admission(&self) -> impl Admission + '_ {
        Admit::today(self.binding())
    }
}

/// The `on_connect` hook of the TLS listener: stores the connection's [`PeerClient`].
pub fn on_connect(state: &AppState, connection: &dyn Any, data: &mut Extensions) {
    let policy = state.policy.load();
    let registry = &policy.registry;
    type Tls = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;
    if let Some(stream) = connection.downcast_ref::<Tls>() {
        let (_, session) = stream.get_ref();
        let client = crate::trust::tls::peer_certificate(session)
            .and_then(|der| registry.identify_by_certificate(der.as_ref()))
            .map(|client| client.id.clone());
        data.insert(PeerClient(client));
    }
}

/// Why a caller was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// Not identified (REST 401, code 30010); the text says what is missing.
    Unknown(&'static str),
    /// Identified but not allowed this operation, sender or capacity (403 / 30010).
    NotAllowed,
    /// Over its rate limit (429 / 30013).
    RateLimited,
}

impl Denied {
    pub fn code(self) -> ErrorCode {
        match self {
            Denied::Unknown(_) | Denied::NotAllowed => ErrorCode::NotAuthorised,
            Denied::RateLimited => ErrorCode::RateLimited,
        }
    }
}

/// The client of a request by its connection's certificate (production profile).
fn by_certificate<'p>(policy: &'p Policy, request: &HttpRequest) -> Option<&'p Client> {
    by_peer(policy, request.conn_data::<PeerClient>())
}

fn by_peer<'p>(policy: &'p Policy, peer: Option<&PeerClient>) -> Option<&'p Client> {
    policy.registry.identify_by_id(peer?.0.as_deref()?)
}

/// Identifies a REST caller and admits it to `operation`.
pub fn admit_rest(
    state: &AppState,
    request: &HttpRequest,
    operation: Operation,
) -> Result<Admitted, Denied> {
    let policy = current_policy(state);
    let client = if state.development {
        let id = request
            .headers()
            .get("x-client-id")
            .and_then(|v| v.to_str().ok())
            .ok_or(Denied::Unknown(
                "no X-Client-Id header (development profile: callers name their client id)",
            ))?;
        policy.registry.identify_by_id(id).ok_or(Denied::Unknown(
            "the X-Client-Id is not a registered client",
        ))?
    } else {
        by_certificate(&policy, request).ok_or(Denied::Unknown(
            "the client certificate is not registered for this service",
        ))?
    };
    client
        .authorise(None, None, operation)
        .map_err(|_| Denied::NotAllowed)?;
    let index = Admitted::index(&policy, client).ok_or(Denied::NotAllowed)?;
    let admitted = Admitted { policy, index };
    rate_limit(state, &admitted)?;
    Ok(admitted)
}

/// Identifies a SOAP caller from its connection's [`PeerClient`] (or, in the development
/// profile, its `Afzender`) and checks with [`Client::authorise`] that the `Afzender` and
/// `Hoedanigheid` belong to it and that it may call `operation` (one question, or more). The
/// door applies the rate limit ([`rate_limit`]) once the request is otherwise admitted. Takes the
/// peer rather than the request so that it can run on a compute thread.
pub fn admit_soap(
    state: &AppState,
    peer: Option<&PeerClient>,
    identificatie: &str,
    hoedanigheid: &str,
    operation: Operation,
) -> Result<Admitted, Denied> {
    let policy = current_policy(state);
    let client = if state.development {
        policy.registry.identify_by_afzender(identificatie)
    } else {
        by_peer(&policy, peer)
    }
    .ok_or(Denied::Unknown("unknown sender"))?;
    client
        .authorise(Some(identificatie), Some(hoedanigheid), operation)
        .map_err(|_| Denied::NotAllowed)?;
    let index = Admitted::index(&policy, client).ok_or(Denied::NotAllowed)?;
    Ok(Admitted { policy, index })
}

/// Takes one token of the caller's rate limit (429 / 30013 when there is none left).
pub fn rate_limit(state: &AppState, admitted: &Admitted) -> Result<(), Denied> {
    if admitted.policy.limiter.try_acquire(admitted.client()) {
        Ok(())
    } else {
        state.metrics.rate_limited(&admitted.client().id);
        Err(Denied::RateLimited)
    }
}
