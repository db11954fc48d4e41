//! `kbi-advice check`: answer one question from a snapshot, as the REST door would.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;

use super::exit;
use crate::service::settings::load_rules;
use crate::snapshot::source::Pinned;
use crate::snapshot::SnapshotSource;
use kbi_core::domain::decision::{DecidingRule, Decision};
use kbi_core::domain::{CompiledSnapshot, ErrorCode, History, Question, RuleSet};
use kbi_core::io::Console;
use kbi_core::snapshot::reader::ReadLimits;
use kbi_wire::json::{AnswerJson, Problem};

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Snapshot file (JSON Lines, optionally .gz or .zst), or redis://HOST[:PORT][/DB][?prefix=P]
    /// for the version currently published in Redis.
    #[arg(long, value_name = "FILE|redis://…")]
    pub snapshot: SnapshotSource,
    /// The person's INSZ (11 digits; spaces, dots and dashes allowed).
    #[arg(long)]
    pub insz: String,
    /// Reference date, YYYY-MM-DD.
    #[arg(long)]
    pub date: Option<String>,
    /// Premium year P: the reference date is 1 January of P − 1.
    #[arg(long)]
    pub premium_year: Option<String>,
    /// Rules file (default: the shipped config/rules.toml).
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Also print, on stderr, the periods, regime, deadlines and the deciding rule
    /// (for operators and support staff only, never for callers).
    #[arg(long)]
    pub explain: bool,
}

pub fn run(args: CheckArgs) -> anyhow::Result<u8> {
    let rules = load_rules(args.rules.as_ref())?;
    // Check the question before loading a large snapshot: a typo should not cost a load.
    let question = match Question::parse(
        &args.insz,
        args.date.as_deref(),
        args.premium_year.as_deref(),
    ) {
        Ok(question) => question,
        Err(code) => return Ok(refuse(code)),
    };
    let (snapshot, pinned) =
        args.snapshot
            .load_pinned(rules.clone(), ReadLimits::default(), &Console::new())?;
    let outcome = snapshot.advise(&question);
    if args.explain {
        eprint!("{}", explain(&pinned, &snapshot, &question, &rules)?);
    }
    match outcome {
        Ok(advice) => {
            let json = AnswerJson::new(&advice, &snapshot.meta, &rules.version);
            println!("{}", serde_json::to_string_pretty(&json)?);
            Ok(exit::OK)
        }
        Err(refusal) => Ok(refuse(refusal.code)),
    }
}

fn refuse(code: ErrorCode) -> u8 {
    let problem = Problem::from_code(code);
    println!(
        "{}",
        serde_json::to_string_pretty(&problem).unwrap_or_default()
    );
    exit::REFUSED
}

/// The operator's explanation: which facts, periods and deadlines decided.
fn explain(
    pinned: &Pinned,
    snapshot: &CompiledSnapshot,
    question: &Question,
    rules: &RuleSet,
) -> anyhow::Result<String> {
    let date = question.reference.date();
    let mut out = String::new();
    let meta = &snapshot.meta;
    writeln!(
        out,
        "explanation (operators only; never send this to a caller)"
    )?;
    writeln!(
        out,
        "  snapshot {} extracted {}, rules {}, reference date {date}",
        meta.snapshot_id,
        meta.extracted_at.format("%Y-%m-%dT%H:%M:%SZ"),
        rules.version
    )?;
    let last_day =
        meta.extracted_at.date_naive() + chrono::Days::new(u64::from(rules.max_days_after_extract));
    writeln!(
        out,
        "  the snapshot speaks for dates up to {last_day}; rules are in force from {}",
        rules.earliest_valid_from()
    )?;
    writeln!(out, "  the source records: {}", meta.facts)?;
    if let Some(sources) = &meta.sources {
        writeln!(out, "  sources: {sources}")?;
    }
    for regime in &rules.regimes {
        for setting in regime.deadlines_left_out(meta.facts) {
            writeln!(
                out,
                "  deadline left out: regime {} sets `{}`, but the source does not record {}: \
                 no missed deadline is derived from its silence",
                regime.id,
                setting.key(),
                setting.act().type_name()
            )?;
        }
    }
    // The same rules the index was compiled under, so the explanation agrees with the answer.
    let rules = &rules.judged_with(meta.facts);
    let Some(person) = pinned.find_person(question.insz)? else {
        writeln!(
            out,
            "  the INSZ is not in the snapshot: answered as not subject"
        )?;
        return Ok(out);
    };
    let history = History::new(person.events, rules);
    writeln!(out, "  events in application order:")?;
    for event in history.events() {
        writeln!(out, "    {} {}", event.date, describe_kind(&event.kind))?;
    }
    if history.periods().is_empty() {
        writeln!(out, "  no obligation period")?;
    }
    for (i, period) in history.periods().iter().enumerate() {
        let regime = period
            .regime
            .and_then(|r| rules.regimes.get(r))
            .map_or("no regime covers this start (30004)".to_string(), |r| {
                format!("regime {}", r.id)
            });
        let end = period.end.map_or("open".to_string(), |e| {
            format!("until {} (exclusive, {})", e.date, e.kind.type_name())
        });
        writeln!(
            out,
            "  period #{}: {} from {} {end}; {regime}",
            i + 1,
            period.region.code(),
            period.start
        )?;
    }
    let decision: Decision = history.decide(rules, date);
    match decision.period {
        Some(p) => writeln!(out, "  on {date}: inside period #{}", p + 1)?,
        None => writeln!(out, "  on {date}: inside no period")?,
    }
    for d in &decision.deadlines {
        writeln!(
            out,
            "  deadline {}: derived {}, effective {}, act {}{}",
            d.obligation.code(),
            d.derived,
            d.effective,
            d.met_on
                .map_or("not done".to_string(), |m| format!("on {m}")),
            if d.missed { " -> MISSED" } else { "" }
        )?;
    }
    let rule = match decision.rule {
        DecidingRule::NoPeriod => "not subject: no period contains the date".to_string(),
        DecidingRule::NoRegime => "error 30004: no regime covers the period".to_string(),
        DecidingRule::Fulfilled(e) => {
            format!("rule 1 (fulfilled): {} of {}", e.kind.type_name(), e.date)
        }
        DecidingRule::OpenInfringement { obligation, since } => format!(
            "rule 2 (established breach): {} infringement of {since} still open",
            obligation.code()
        ),
        DecidingRule::MissedDeadline(d) => format!(
            "rule 3 (missed deadline): {} deadline {} passed without the act",
            d.obligation.code(),
            d.effective
        ),
        DecidingRule::NothingMissed => "rule 4: nothing missed, compliant".to_string(),
    };
    writeln!(out, "  decided by {rule}")?;
    Ok(out)
}

fn describe_kind(kind: &kbi_core::domain::EventKind) -> String {
    use kbi_core::domain::EventKind as K;
    match kind {
        K::ObligationStart { region } => format!("OBLIGATION_START region={}", region.code()),
        K::DeadlineExtension { obligation, until } => {
            format!(
                "DEADLINE_EXTENSION obligation={} until={until}",
                obligation.code()
            )
        }
        K::Infringement { obligation } => format!("INFRINGEMENT obligation={}", obligation.code()),
        K::InfringementClosed { obligation } => {
            format!("INFRINGEMENT_CLOSED obligation={}", obligation.code())
        }
        other => other.type_name().to_string(),
    }
}
