//! The rows of a delivery, kept compact in memory until they are written.
//!
//! Suppression (`suppress.rs`) needs every row before the first is written, and a monitoring
//! file has a million rows of fifteen fields: each row is its INSZ (8 bytes, for the identity
//! column and the order) and one `u32` per field, an index into one table of the distinct
//! values ([`Values`]). Field values are few (codes, categories, dates, `ja`/`nee`), so a
//! million rows of fifteen fields take about 70 MB instead of the gigabyte of a `String` per
//! cell.

use std::collections::HashMap;
use std::sync::Arc;

/// The distinct cell values of a delivery; index 0 is the empty cell.
#[derive(Debug, Clone)]
pub struct Values {
    texts: Vec<Arc<str>>,
    index: HashMap<Arc<str>, u32>,
}

/// The empty cell (the dossier does not hold it, or suppressed).
pub const EMPTY: u32 = 0;

impl Default for Values {
    fn default() -> Self {
        let empty: Arc<str> = Arc::from("");
        let mut index = HashMap::new();
        index.insert(empty.clone(), EMPTY);
        Values {
            texts: vec![empty],
            index,
        }
    }
}

impl Values {
    /// The index of `text`, added if new.
    pub fn intern(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.index.get(text) {
            return id;
        }
        let id = u32::try_from(self.texts.len()).expect("fewer than 2^32 distinct values");
        let shared: Arc<str> = Arc::from(text);
        self.texts.push(shared.clone());
        self.index.insert(shared, id);
        id
    }

    /// The text of value `id`.
    pub fn text(&self, id: u32) -> &str {
        &self.texts[id as usize]
    }

    /// Number of distinct values (the empty one included).
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The rows: one INSZ and `width` value indexes each, row-major.
#[derive(Debug, Clone, Default)]
pub struct Table {
    width: usize,
    insz: Vec<u64>,
    cells: Vec<u32>,
}

impl Table {
    /// A table of `width` value columns per row.
    pub fn new(width: usize) -> Table {
        Table {
            width,
            insz: Vec::new(),
            cells: Vec::new(),
        }
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn len(&self) -> usize {
        self.insz.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insz.is_empty()
    }

    /// Adds a row; `cells` must hold `width` values.
    pub fn push(&mut self, insz: u64, cells: &[u32]) {
        debug_assert_eq!(cells.len(), self.width);
        self.insz.push(insz);
        self.cells.extend_from_slice(cells);
    }

    pub fn insz(&self, row: usize) -> u64 {
        self.insz[row]
    }

    pub fn row(&self, row: usize) -> &[u32] {
        &self.cells[row * self.width..(row + 1) * self.width]
    }

    pub fn row_mut(&mut self, row: usize) -> &mut [u32] {
        &mut self.cells[row * self.width..(row + 1) * self.width]
    }

    /// Reorders the rows by `key` (a stable sort of row numbers, then one permutation).
    pub fn sort_by_key<K: Ord + Copy>(&mut self, mut key: impl FnMut(&Table, usize) -> K) {
        let keys: Vec<K> = (0..self.len()).map(|row| key(self, row)).collect();
        self.sort_with_keys(keys);
    }

    /// Reorders the rows by `keys` (one per row) and returns the keys in the new order, so a
    /// key that is costly to compute (a pseudonym) is computed once.
    pub fn sort_with_keys<K: Ord + Copy>(&mut self, keys: Vec<K>) -> Vec<K> {
        let mut order: Vec<u32> = (0..self.len() as u32).collect();
        order.sort_by(|a, b| keys[*a as usize].cmp(&keys[*b as usize]));
        self.permute(&order);
        order.iter().map(|&row| keys[row as usize]).collect()
    }

    /// Reorders the rows by comparing them with `compare`.
    pub fn sort_by(&mut self, mut compare: impl FnMut(&Table, usize, usize) -> std::cmp::Ordering) {
        let mut order: Vec<u32> = (0..self.len() as u32).collect();
        order.sort_by(|a, b| compare(self, *a as usize, *b as usize));
        self.permute(&order);
    }

    fn permute(&mut self, order: &[u32]) {
        let mut insz = Vec::with_capacity(self.insz.len());
        let mut cells = Vec::with_capacity(self.cells.len());
        for &row in order {
            insz.push(self.insz[row as usize]);
            cells.extend_from_slice(self.row(row as usize));
        }
        self.insz = insz;
        self.cells = cells;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_interned_once_and_the_empty_cell_is_zero() {
        let mut values = Values::default();
        assert_eq!(values.intern(""), EMPTY);
        let a = values.intern("M");
        let b = values.intern("V");
        assert_eq!(values.intern("M"), a);
        assert_ne!(a, b);
        assert_eq!(values.text(b), "V");
        assert_eq!(values.len(), 3);
    }

    #[test]
    fn rows_sort_with_their_cells() {
        let mut table = Table::new(2);
        table.push(30, &[3, 33]);
        table.push(10, &[1, 11]);
        table.push(20, &[2, 22]);
        table.sort_by_key(|_, row| table_key(row));
        fn table_key(row: usize) -> usize {
            // Descending by insertion: 2, 1, 0.
            2 - row
        }
        assert_eq!(table.insz(0), 20);
        assert_eq!(table.row(0), &[2, 22]);
        assert_eq!(table.insz(2), 30);
        assert_eq!(table.row(2), &[3, 33]);
        table.sort_by(|t, a, b| t.insz(a).cmp(&t.insz(b)));
        assert_eq!(table.row(0), &[1, 11]);
        assert_eq!(table.row(1), &[2, 22]);
    }
}
