//! The domain core: pure types and rules, no I/O, no async.
//!
//! - [`insz`]: the person's number, validated once at the border;
//! - [`day`]: strict dates and calendar-month arithmetic;
//! - [`event`]: the dated facts of an integration file;
//! - [`facts`]: the event types a snapshot's source records at all;
//! - [`rules`]: the dated regimes of `config/rules.toml`;
//! - [`decision`]: the decision procedure as a replay of the events (the reference);
//! - [`timeline`] and [`index`]: the compiled form that answers in a lookup;
//! - [`advice`]: the question, the minimal answer and the refusals;
//! - [`reason`]: reason codes and the exception catalogue;
//! - [`verdict`]: one judged question, as every door, the audit log and the metrics see it;
//! - [`magda`]: the lengths MAGDA fixes for context values.

pub mod advice;
pub mod compiled;
pub mod day;
pub mod decision;
pub mod event;
pub mod facts;
pub mod index;
pub mod insz;
pub mod magda;
pub mod reason;
pub mod rules;
pub mod timeline;
pub mod verdict;

pub use advice::{Advice, Question, Reference, Refusal};
pub use compiled::{CompiledSnapshot, SnapshotMeta};
pub use decision::{History, Status};
pub use event::{Event, EventKind, Obligation, Region};
pub use facts::Facts;
pub use index::{PersonIndex, PersonIndexBuilder};
pub use insz::{Insz, InszError};
pub use reason::{ErrorCode, ReasonCode};
pub use rules::RuleSet;
pub use verdict::{Admission, AdmittedCaller, ProtocolRefusal, RefusalText, Unbound, Verdict};
