//! Progress of long work: a bar on a terminal, plain lines otherwise, nothing in tests.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Receives progress of a long operation counted in items (persons).
pub trait Progress: Sync {
    fn start(&self, what: &str, total: u64);
    fn advance(&self, items: u64);
    fn finish(&self);
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// Work smaller than this finishes before anyone could read a progress report.
const REPORT_FROM: u64 = 200_000;

/// A bar on a terminal (stderr); otherwise a plain line at every tenth of the work.
pub struct Console {
    bar: Mutex<Option<indicatif::ProgressBar>>,
    total: AtomicU64,
    done: AtomicU64,
    what: Mutex<String>,
    /// What the items are ("persons", "bytes").
    unit: &'static str,
}

impl Console {
    pub fn new() -> Self {
        Console::counting("persons")
    }

    /// A console whose items are `unit` (the import counts bytes of input).
    pub fn counting(unit: &'static str) -> Self {
        Console {
            bar: Mutex::new(None),
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            what: Mutex::new(String::new()),
            unit,
        }
    }
}

impl Default for Console {
    fn default() -> Self {
        Console::new()
    }
}

impl Progress for Console {
    fn start(&self, what: &str, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        *self.what.lock().unwrap_or_else(|e| e.into_inner()) = what.to_string();
        if total >= REPORT_FROM && std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(&format!(
                    "{{msg}} [{{bar:40}}] {{pos}}/{{len}} {} ({{per_sec}}, {{eta}})",
                    self.unit
                ))
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(what.to_string());
            *self.bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
        }
    }

    fn advance(&self, items: u64) {
        let before = self.done.fetch_add(items, Ordering::Relaxed);
        let total = self.total.load(Ordering::Relaxed);
        if let Some(bar) = &*self.bar.lock().unwrap_or_else(|e| e.into_inner()) {
            bar.inc(items);
        } else if total >= REPORT_FROM {
            let tenth = |n: u64| n * 10 / total.max(1);
            if tenth(before + items) > tenth(before) {
                let what = self.what.lock().unwrap_or_else(|e| e.into_inner()).clone();
                eprintln!("{what}: {}/{total} {}", before + items, self.unit);
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}
