//! Small-cell suppression (`protocols.md` section 5): for a delivery without the INSZ, the
//! cells of the quasi-identifiers of every row whose combination of quasi-identifier values
//! occurs fewer than `min_group` times in the file are emptied. Local suppression as ARX and
//! sdcMicro do it: no row is dropped, so totals stay right; what could single a person out
//! goes.

use std::collections::HashMap;

use crate::table::{Table, EMPTY};

/// What suppression did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Suppressed {
    /// Rows whose group was smaller than `min_group`.
    pub rows: u64,
    /// Cells emptied (a cell that was already empty is not counted).
    pub cells: u64,
}

/// Empties, in the rows whose combination of the values in `columns` occurs fewer than
/// `min_group` times, the cells of `columns`. The empty value counts as a value of its own
/// (a group of persons whose sex the register does not hold is a group like any other).
pub fn suppress(table: &mut Table, columns: &[usize], min_group: u32) -> Suppressed {
    let mut done = Suppressed::default();
    if columns.is_empty() || min_group <= 1 {
        return done;
    }
    let key = |row: &[u32]| -> Vec<u32> { columns.iter().map(|&c| row[c]).collect() };
    let mut groups: HashMap<Vec<u32>, u32> = HashMap::new();
    for r in 0..table.len() {
        *groups.entry(key(table.row(r))).or_insert(0) += 1;
    }
    for r in 0..table.len() {
        let size = groups.get(&key(table.row(r))).copied().unwrap_or(0);
        if size >= min_group {
            continue;
        }
        done.rows += 1;
        let row = table.row_mut(r);
        for &c in columns {
            if row[c] != EMPTY {
                row[c] = EMPTY;
                done.cells += 1;
            }
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[[u32; 3]]) -> Table {
        let mut t = Table::new(3);
        for (i, r) in rows.iter().enumerate() {
            t.push(i as u64, r);
        }
        t
    }

    #[test]
    fn rows_of_groups_smaller_than_k_lose_their_quasi_identifiers_only() {
        // Columns 0 and 1 are quasi-identifiers, column 2 is not.
        let mut t = table(&[[1, 5, 9], [1, 5, 8], [1, 5, 7], [2, 5, 6], [1, 6, 5]]);
        let done = suppress(&mut t, &[0, 1], 3);
        assert_eq!(done, Suppressed { rows: 2, cells: 4 });
        assert_eq!(t.len(), 5, "no row dropped");
        assert_eq!(t.row(0), &[1, 5, 9]);
        assert_eq!(t.row(3), &[EMPTY, EMPTY, 6]);
        assert_eq!(t.row(4), &[EMPTY, EMPTY, 5]);
    }

    #[test]
    fn empty_cells_are_a_value_and_are_not_counted_when_emptied() {
        let mut t = table(&[[EMPTY, 5, 1], [3, 5, 1], [3, 5, 1]]);
        let done = suppress(&mut t, &[0, 1], 2);
        assert_eq!(done, Suppressed { rows: 1, cells: 1 });
        assert_eq!(t.row(0), &[EMPTY, EMPTY, 1]);
        assert_eq!(t.row(1), &[3, 5, 1]);
    }

    #[test]
    fn a_group_of_exactly_k_stays_and_k_of_one_does_nothing() {
        let mut t = table(&[[1, 1, 1], [1, 1, 2], [2, 2, 2]]);
        assert_eq!(suppress(&mut t.clone(), &[0, 1], 1), Suppressed::default());
        let done = suppress(&mut t, &[0, 1], 2);
        assert_eq!(done.rows, 1);
        assert_eq!(t.row(0), &[1, 1, 1]);
        assert_eq!(t.row(2), &[EMPTY, EMPTY, 2]);
    }
}
