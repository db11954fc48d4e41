//! The decision procedure of `rules.md`, as a straightforward replay of one person's events.
//!
//! This is the reference: the compiled index ([`super::timeline`]) evaluates it once per change
//! date when a snapshot is loaded, and a property test checks that the index answers exactly as
//! this replay does on any date. `--explain` shows the [`Decision`] it returns.

use chrono::NaiveDate;

use super::day::{add_days, add_months, next_day};
use super::event::{sort_events, Event, EventKind, Obligation, Region};
use super::reason::ReasonCode;
use super::rules::{Regime, RuleSet};

/// A person's situation on one date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// No obligation period contains the date.
    NotSubject,
    /// Subject and complying.
    Compliant,
    /// Subject and not complying, for this reason.
    NonCompliant(ReasonCode),
    /// Subject, but no regime covers the period's start: the service cannot judge (30004).
    NoRegime,
}

/// One obligation period: from an `OBLIGATION_START` (inclusive) to the first `OBLIGATION_END`
/// or `EXEMPTION` after it, or the next `OBLIGATION_START` (exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub region: Region,
    pub start: NaiveDate,
    /// The event that ended the period and its date, if it ended.
    pub end: Option<Event>,
    /// Index of the regime that judges the period, if any covers its start.
    pub regime: Option<usize>,
    start_pos: usize,
    end_pos: usize,
    first: bool,
}

impl Period {
    /// Whether `date` falls inside the period.
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.start <= date && self.end.is_none_or(|end| date < end.date)
    }
}

/// A deadline of rule 3 as it stands on the reference date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub obligation: Obligation,
    /// The deadline the regime derives.
    pub derived: NaiveDate,
    /// After any `DEADLINE_EXTENSION` in effect on the reference date.
    pub effective: NaiveDate,
    /// The date of the required act, if it was done on or before the reference date.
    pub met_on: Option<NaiveDate>,
    /// The deadline passed before the reference date without the act.
    pub missed: bool,
}

/// The rule of `rules.md` that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecidingRule {
    /// Not subject: no period contains the date.
    NoPeriod,
    /// Subject, but no regime covers the period (30004).
    NoRegime,
    /// Rule 1: fulfilled by this event.
    Fulfilled(Event),
    /// Rule 2: an established breach of this obligation, open since this date.
    OpenInfringement {
        obligation: Obligation,
        since: NaiveDate,
    },
    /// Rule 3: this deadline passed without the required act.
    MissedDeadline(Deadline),
    /// Rule 4: nothing missed.
    NothingMissed,
}

/// The full outcome of the replay on one date, for `--explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub status: Status,
    pub rule: DecidingRule,
    /// Index into [`History::periods`] of the period that contains the date.
    pub period: Option<usize>,
    /// The deadlines of rule 3 as computed (filled when rule 3 was reached).
    pub deadlines: Vec<Deadline>,
}

/// One person's events in application order, with the obligation periods they form.
#[derive(Debug, Clone)]
pub struct History {
    events: Vec<Event>,
    periods: Vec<Period>,
}

impl History {
    /// Sorts the events into application order and derives the periods.
    pub fn new(mut events: Vec<Event>, rules: &RuleSet) -> History {
        sort_events(&mut events);
        let mut periods: Vec<Period> = Vec::new();
        let mut open: Option<usize> = None;
        for (pos, event) in events.iter().enumerate() {
            match event.kind {
                EventKind::ObligationStart { region } => {
                    if let Some(p) = open {
                        periods[p].end = Some(*event);
                        periods[p].end_pos = pos;
                    }
                    open = Some(periods.len());
                    periods.push(Period {
                        region,
                        start: event.date,
                        end: None,
                        regime: rules.regime_index(region, event.date),
                        start_pos: pos,
                        end_pos: usize::MAX,
                        first: periods.is_empty(),
                    });
                }
                kind if kind.closes_period() => {
                    // An end with no period open (before any start, or a second end) changes
                    // nothing.
                    if let Some(p) = open.take() {
                        periods[p].end = Some(*event);
                        periods[p].end_pos = pos;
                    }
                }
                _ => {}
            }
        }
        History { events, periods }
    }

    pub fn events(&self) -> &[Event] {
        &self.events
    }

    pub fn periods(&self) -> &[Period] {
        &self.periods
    }

    /// The period containing `date`, if any (periods never overlap).
    pub(crate) fn period_on(&self, date: NaiveDate) -> Option<usize> {
        self.periods.iter().position(|p| p.contains(date))
    }

    /// The events attributed to a period: those between its start and its end, and for the first
    /// period also those before its start (someone may register before becoming obligated).
    /// Events between an end and the next start belong to no period.
    pub(crate) fn attributed(&self, period: &Period) -> &[Event] {
        let from = if period.first {
            0
        } else {
            period.start_pos + 1
        };
        let to = period.end_pos.min(self.events.len());
        &self.events[from..to]
    }

    /// The status on `date`: the replay without the explanation.
    pub fn status_on(&self, rules: &RuleSet, date: NaiveDate) -> Status {
        self.decide_inner(rules, date, None).0
    }

    /// The status on `date` and why.
    pub fn decide(&self, rules: &RuleSet, date: NaiveDate) -> Decision {
        let mut deadlines = Vec::new();
        let (status, rule) = self.decide_inner(rules, date, Some(&mut deadlines));
        Decision {
            status,
            rule,
            period: self.period_on(date),
            deadlines,
        }
    }

    fn decide_inner(
        &self,
        rules: &RuleSet,
        date: NaiveDate,
        explain_deadlines: Option<&mut Vec<Deadline>>,
    ) -> (Status, DecidingRule) {
        let Some(p) = self.period_on(date) else {
            return (Status::NotSubject, DecidingRule::NoPeriod);
        };
        let period = &self.periods[p];
        let Some(regime) = period.regime.and_then(|i| rules.regimes.get(i)) else {
            return (Status::NoRegime, DecidingRule::NoRegime);
        };
        let attributed = self.attributed(period);
        // Events in effect on `date`: attributed events are in date order.
        let known = &attributed[..attributed.partition_point(|e| e.date <= date)];

        // Rule 1: fulfilment outweighs earlier breaches.
        if let Some(event) = known.iter().find(|e| fulfils(e.kind, period.region)) {
            return (Status::Compliant, DecidingRule::Fulfilled(*event));
        }

        // Rule 2: the open breach established first; ties in table order.
        let mut first_open: Option<(NaiveDate, Obligation)> = None;
        for event in known {
            if let EventKind::Infringement { obligation } = event.kind {
                if is_open(known, obligation, event.date) {
                    let candidate = (event.date, obligation);
                    if first_open.is_none_or(|best| candidate < best) {
                        first_open = Some(candidate);
                    }
                }
            }
        }
        if let Some((since, obligation)) = first_open {
            return (
                Status::NonCompliant(ReasonCode::for_obligation(obligation)),
                DecidingRule::OpenInfringement { obligation, since },
            );
        }

        // Rule 3: the earliest missed deadline; ties in table order.
        let deadlines = deadlines(period, regime, known, date);
        let missed = deadlines
            .iter()
            .flatten()
            .filter(|d| d.missed)
            .min_by_key(|d| (d.effective, d.obligation))
            .copied();
        if let Some(out) = explain_deadlines {
            out.extend(deadlines.iter().flatten().copied());
        }
        match missed {
            Some(deadline) => (
                Status::NonCompliant(ReasonCode::for_obligation(deadline.obligation)),
                DecidingRule::MissedDeadline(deadline),
            ),
            None => (Status::Compliant, DecidingRule::NothingMissed),
        }
    }

    /// Every date on which the status may change: each event date, and the day after each
    /// deadline the regime can derive (a deadline "passed before D" from its next day on).
    /// The compiled index evaluates the replay on exactly these dates.
    pub fn change_dates(&self, rules: &RuleSet) -> Vec<NaiveDate> {
        let mut dates: Vec<NaiveDate> = self.events.iter().map(|e| e.date).collect();
        for period in &self.periods {
            let Some(regime) = period.regime.and_then(|i| rules.regimes.get(i)) else {
                continue;
            };
            let attributed = self.attributed(period);
            for months in [
                regime.registration_months,
                regime.contract_months,
                regime.certificate_months,
            ]
            .into_iter()
            .flatten()
            {
                dates.push(next_day(add_months(period.start, months)));
            }
            if let Some(days) = regime.employment_service_days {
                if let Some(contract) = attributed
                    .iter()
                    .find(|e| e.kind == EventKind::ContractSigned)
                {
                    dates.push(next_day(add_days(contract.date, days)));
                }
            }
            for event in attributed {
                if let EventKind::DeadlineExtension { until, .. } = event.kind {
                    dates.push(next_day(until));
                }
            }
        }
        dates.sort_unstable();
        dates.dedup();
        dates
    }
}

/// Rule 1: a certificate, a declaration of effort, or in Brussels the attestation.
fn fulfils(kind: EventKind, region: Region) -> bool {
    match kind {
        EventKind::Certificate | EventKind::EffortDeclaration => true,
        EventKind::BrusselsAttestation => region == Region::Brussels,
        _ => false,
    }
}

/// The act that remedies a breach of `obligation`, where the rules name one. Attendance and
/// certificate breaches (and the Brussels attestation, which is itself fulfilment) have none.
fn remedy(obligation: Obligation) -> Option<EventKind> {
    match obligation {
        Obligation::Registration => Some(EventKind::Registration),
        Obligation::Contract => Some(EventKind::ContractSigned),
        Obligation::EmploymentService => Some(EventKind::EmploymentServiceRegistration),
        Obligation::Attendance | Obligation::Certificate | Obligation::BrusselsAttestation => None,
    }
}

/// Rule 2: a breach established on `since` is open unless an `INFRINGEMENT_CLOSED` for the same
/// obligation, or the remedying act, is dated on or after it (among the events in effect). The
/// same day counts whatever the same-day order: a person who registers on the day the late
/// registration is established is registered (real register extracts hold exactly this case).
fn is_open(known: &[Event], obligation: Obligation, since: NaiveDate) -> bool {
    let remedy = remedy(obligation);
    !known.iter().any(|e| {
        e.date >= since
            && match e.kind {
                EventKind::InfringementClosed { obligation: closed } => closed == obligation,
                kind => Some(kind) == remedy,
            }
    })
}

/// Rule 3: the deadlines the regime derives for the period, as they stand on `date`.
fn deadlines(
    period: &Period,
    regime: &Regime,
    known: &[Event],
    date: NaiveDate,
) -> [Option<Deadline>; 4] {
    let act_date = |kind: EventKind| known.iter().find(|e| e.kind == kind).map(|e| e.date);
    let first_contract = act_date(EventKind::ContractSigned);
    let derive = |obligation: Obligation, derived: Option<NaiveDate>, act: Option<NaiveDate>| {
        let derived = derived?;
        let extended = known
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::DeadlineExtension {
                    obligation: o,
                    until,
                } if o == obligation => Some(until),
                _ => None,
            })
            .max();
        let effective = extended.map_or(derived, |until| until.max(derived));
        Some(Deadline {
            obligation,
            derived,
            effective,
            met_on: act,
            missed: effective < date && act.is_none(),
        })
    };
    [
        derive(
            Obligation::Registration,
            regime
                .registration_months
                .map(|m| add_months(period.start, m)),
            act_date(EventKind::Registration),
        ),
        derive(
            Obligation::Contract,
            regime.contract_months.map(|m| add_months(period.start, m)),
            first_contract,
        ),
        derive(
            Obligation::EmploymentService,
            regime
                .employment_service_days
                .zip(first_contract)
                .map(|(days, contract)| add_days(contract, days)),
            act_date(EventKind::EmploymentServiceRegistration),
        ),
        // Fulfilment would have decided under rule 1, so here the act is never there.
        derive(
            Obligation::Certificate,
            regime
                .certificate_months
                .map(|m| add_months(period.start, m)),
            None,
        ),
    ]
}
