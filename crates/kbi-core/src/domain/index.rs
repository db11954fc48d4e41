//! The compiled index of a whole snapshot: every person's INSZ in ascending order with a slice of
//! status changes each, plus a hash directory of positions.
//!
//! Flat arrays: a person costs 12 bytes (INSZ + offset) plus 4 per status change, plus 4 to 8
//! bytes of directory. The sorted arrays give ordered iteration (the premium list); the directory
//! makes a lookup a few memory accesses whatever the size, where a binary search over 10 million
//! numbers would miss the CPU cache a dozen times.

use chrono::NaiveDate;

use super::decision::Status;
use super::insz::Insz;
use super::timeline::{status_on, Transition};

/// Persons and their compiled timelines.
#[derive(Debug, Default, Clone)]
pub struct PersonIndex {
    inszs: Vec<u64>,
    /// `offsets[i]..offsets[i + 1]` are the transitions of person `i`.
    offsets: Vec<u32>,
    transitions: Vec<Transition>,
    /// Open-addressing hash table of positions into `inszs` (`EMPTY` = free slot); a power of two
    /// in size, at most two-thirds full.
    slots: Vec<u32>,
    /// `64 - log2(slots.len())`: the hash keeps the top bits of the product.
    slot_shift: u32,
}

const EMPTY: u32 = u32::MAX;

/// Fibonacci hashing: multiply by 2^64 / φ and keep the top bits. INSZ values are clustered by
/// birth date, and the multiplication spreads neighbours over the whole table.
fn slot_of(value: u64, shift: u32) -> usize {
    (value.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) as usize
}

/// A person's compiled timeline, borrowed from the index.
#[derive(Debug, Clone, Copy)]
pub struct Timeline<'a>(&'a [Transition]);

impl Timeline<'_> {
    pub fn status_on(&self, date: NaiveDate) -> Status {
        status_on(self.0, date)
    }

    pub fn transitions(&self) -> &[Transition] {
        self.0
    }
}

impl PersonIndex {
    pub fn len(&self) -> usize {
        self.inszs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inszs.is_empty()
    }

    /// The person's timeline, or `None` when the INSZ is not in the snapshot.
    pub fn lookup(&self, insz: Insz) -> Option<Timeline<'_>> {
        self.position(insz.value()).map(|i| self.timeline(i))
    }

    fn position(&self, value: u64) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut slot = slot_of(value, self.slot_shift);
        // The table is never full, so the probe always meets an empty slot.
        loop {
            let position = self.slots[slot];
            if position == EMPTY {
                return None;
            }
            if self.inszs[position as usize] == value {
                return Some(position as usize);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Fills the hash directory from the (sorted, duplicate-free) INSZ array.
    fn build_directory(&mut self) {
        let wanted = (self.inszs.len() * 3 / 2).max(16);
        let size = wanted.next_power_of_two();
        self.slot_shift = 64 - size.trailing_zeros();
        self.slots = vec![EMPTY; size];
        let mask = size - 1;
        for (position, &value) in self.inszs.iter().enumerate() {
            let mut slot = slot_of(value, self.slot_shift);
            while self.slots[slot] != EMPTY {
                slot = (slot + 1) & mask;
            }
            self.slots[slot] = position as u32;
        }
    }

    fn timeline(&self, i: usize) -> Timeline<'_> {
        let from = self.offsets[i] as usize;
        let to = self.offsets[i + 1] as usize;
        Timeline(&self.transitions[from..to])
    }

    /// Every person in ascending INSZ order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (Insz, Timeline<'_>)> + '_ {
        (0..self.inszs.len()).map(move |i| {
            // Only validated INSZ enter the index (see `PersonIndexBuilder::push`).
            (
                Insz::from_digits(self.inszs[i]).unwrap_or_else(|_| unreachable_insz()),
                self.timeline(i),
            )
        })
    }

    /// Bytes held by the index's arrays (capacity, not just length).
    pub fn heap_bytes(&self) -> usize {
        self.inszs.capacity() * 8
            + self.offsets.capacity() * 4
            + self.transitions.capacity() * 4
            + self.slots.capacity() * 4
    }

    pub fn transition_count(&self) -> usize {
        self.transitions.len()
    }
}

#[cold]
fn unreachable_insz() -> Insz {
    panic!("the index holds only validated INSZ")
}

/// Two persons with the same INSZ; positions count persons in the order they were pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("person #{second} has the same INSZ as person #{first}")]
pub struct DuplicateInsz {
    pub first: usize,
    pub second: usize,
}

/// Collects persons in any order and builds the sorted index.
#[derive(Debug, Default)]
pub struct PersonIndexBuilder {
    index: PersonIndex,
    sorted: bool,
}

impl PersonIndexBuilder {
    /// `persons` sizes the arrays up front (the header's declared count).
    pub fn with_capacity(persons: usize, transitions: usize) -> Self {
        let mut offsets = Vec::with_capacity(persons + 1);
        offsets.push(0);
        PersonIndexBuilder {
            index: PersonIndex {
                inszs: Vec::with_capacity(persons),
                offsets,
                transitions: Vec::with_capacity(transitions),
                slots: Vec::new(),
                slot_shift: 0,
            },
            sorted: true,
        }
    }

    pub fn len(&self) -> usize {
        self.index.inszs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.inszs.is_empty()
    }

    /// Adds a person. A duplicate of the person pushed just before is reported at once; other
    /// duplicates when the index is finished.
    pub fn push(&mut self, insz: Insz, transitions: &[Transition]) -> Result<(), DuplicateInsz> {
        let value = insz.value();
        if let Some(&last) = self.index.inszs.last() {
            if value == last {
                let n = self.index.inszs.len();
                return Err(DuplicateInsz {
                    first: n - 1,
                    second: n,
                });
            }
            if value < last {
                self.sorted = false;
            }
        }
        self.index.inszs.push(value);
        self.index.transitions.extend_from_slice(transitions);
        let end = u32::try_from(self.index.transitions.len())
            .expect("fewer than 4 billion status changes in one snapshot");
        self.index.offsets.push(end);
        Ok(())
    }

    /// Sorts by INSZ if the input was not sorted (extracts usually are, which costs nothing) and
    /// refuses duplicates.
    pub fn finish(self) -> Result<PersonIndex, DuplicateInsz> {
        let mut index = self.index;
        if !self.sorted {
            index = sort_index(index)?;
        }
        index.inszs.shrink_to_fit();
        index.offsets.shrink_to_fit();
        index.transitions.shrink_to_fit();
        index.build_directory();
        Ok(index)
    }
}

fn sort_index(index: PersonIndex) -> Result<PersonIndex, DuplicateInsz> {
    let n = index.inszs.len();
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_unstable_by_key(|&i| (index.inszs[i as usize], i));
    for pair in order.windows(2) {
        if index.inszs[pair[0] as usize] == index.inszs[pair[1] as usize] {
            return Err(DuplicateInsz {
                first: pair[0] as usize,
                second: pair[1] as usize,
            });
        }
    }
    let mut sorted = PersonIndex {
        inszs: Vec::with_capacity(n),
        offsets: Vec::with_capacity(n + 1),
        transitions: Vec::with_capacity(index.transitions.len()),
        slots: Vec::new(),
        slot_shift: 0,
    };
    sorted.offsets.push(0);
    for &i in &order {
        let i = i as usize;
        sorted.inszs.push(index.inszs[i]);
        let from = index.offsets[i] as usize;
        let to = index.offsets[i + 1] as usize;
        sorted
            .transitions
            .extend_from_slice(&index.transitions[from..to]);
        sorted.offsets.push(sorted.transitions.len() as u32);
    }
    Ok(sorted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reason::ReasonCode;

    fn insz(s: &str) -> Insz {
        Insz::parse(s).unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        crate::domain::day::parse_date(s).unwrap()
    }

    #[test]
    fn unsorted_input_is_sorted_and_found() {
        let mut b = PersonIndexBuilder::with_capacity(3, 4);
        let nok = Transition::new(
            day("2022-07-05"),
            Status::NonCompliant(ReasonCode::NietAangemeld),
        );
        b.push(insz("85073003328"), &[nok]).unwrap();
        b.push(insz("80010110005"), &[]).unwrap();
        b.push(insz("00012556777"), &[]).unwrap();
        let index = b.finish().unwrap();
        let all: Vec<String> = index.iter().map(|(i, _)| i.to_string()).collect();
        assert_eq!(all, ["00012556777", "80010110005", "85073003328"]);
        let t = index.lookup(insz("85073003328")).unwrap();
        assert_eq!(t.status_on(day("2022-07-04")), Status::NotSubject);
        assert_eq!(
            t.status_on(day("2022-07-05")),
            Status::NonCompliant(ReasonCode::NietAangemeld)
        );
        assert!(index.lookup(insz("17073003384")).is_none());
    }

    #[test]
    fn directory_finds_every_person_and_no_stranger() {
        let mut b = PersonIndexBuilder::with_capacity(5000, 0);
        let mut members = Vec::new();
        for serial in (1..998).step_by(2) {
            for day in 1..=10 {
                let insz = crate::snapshot::generate::make_insz(1990, 3, day, serial);
                members.push(insz);
            }
        }
        members.sort();
        for &m in &members {
            b.push(m, &[]).unwrap();
        }
        let index = b.finish().unwrap();
        for &m in &members {
            assert!(index.lookup(m).is_some());
        }
        for serial in (2..998).step_by(2) {
            let stranger = crate::snapshot::generate::make_insz(1990, 3, 5, serial);
            assert!(index.lookup(stranger).is_none());
        }
        assert!(PersonIndex::default().lookup(members[0]).is_none());
    }

    #[test]
    fn duplicates_are_refused_sorted_or_not() {
        let mut b = PersonIndexBuilder::with_capacity(2, 0);
        b.push(insz("80010110005"), &[]).unwrap();
        assert_eq!(
            b.push(insz("80010110005"), &[]),
            Err(DuplicateInsz {
                first: 0,
                second: 1
            })
        );

        let mut b = PersonIndexBuilder::with_capacity(3, 0);
        b.push(insz("85073003328"), &[]).unwrap();
        b.push(insz("80010110005"), &[]).unwrap();
        b.push(insz("85073003328"), &[]).unwrap();
        assert_eq!(
            b.finish().unwrap_err(),
            DuplicateInsz {
                first: 0,
                second: 2
            }
        );
    }
}
