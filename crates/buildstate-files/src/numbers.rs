//! Build numbers: the next in a day's sequence, and which builds a reference may mean.
//! The same rules as the SQLite backend, over the numbers in the directory.

use buildstate_core::{BuildId, BuildNumber};
use buildstate_store::{StoreError, StoreResult};

use crate::index::Entries;
pub(crate) use buildstate_store::sequence_of;

/// The next free number of the day: one above the highest sequence taken under `stem`
/// (numbers chosen by hand included), from 001. The caller holds the exclusive lock, so
/// concurrent creates see each other's numbers.
pub(crate) fn next_number(entries: &Entries, stem: &str) -> StoreResult<BuildNumber> {
    let invalid = || StoreError::InvalidInput(format!("cannot allocate a build number under `{stem}`"));
    // Numerically, not as text: "…-1000" sorts before "…-999".
    let highest = entries.by_number.keys().filter_map(|n| sequence_of(n.as_str(), stem)).max().unwrap_or(0);
    let next = highest.checked_add(1).ok_or_else(invalid)?;
    BuildNumber::with_sequence(stem, next).map_err(|e| StoreError::InvalidInput(e.to_string()))
}

/// The builds whose id or number starts with `reference`, by number, at most 100 — the
/// candidates `resolve_candidates` picks from. Prefixes are literal; a reference that
/// is empty or not printable ASCII (ids and numbers are) matches nothing.
pub(crate) fn prefix_candidates(entries: &Entries, reference: &str) -> Vec<(BuildId, BuildNumber)> {
    if reference.is_empty() || !reference.bytes().all(|b| b.is_ascii_graphic()) {
        return Vec::new();
    }
    // Ids are shown lowercase; numbers are lowercase by construction.
    let id_prefix = reference.to_ascii_lowercase();
    entries
        .by_number
        .iter()
        .filter(|(number, id)| {
            number.as_str().starts_with(reference) || id.to_string().starts_with(&id_prefix)
        })
        .take(100)
        .map(|(number, id)| (*id, number.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(numbers: &[&str]) -> Entries {
        let mut e = Entries::default();
        for (i, n) in numbers.iter().enumerate() {
            e.insert(BuildNumber::new(n).expect("valid"), BuildId::generate(1_000 + i as u64, i as u128));
        }
        e
    }

    #[test]
    fn sequences() {
        let stem = "rhel-8.8-base-aws-20260212-";
        assert_eq!(sequence_of("rhel-8.8-base-aws-20260212-007", stem), Some(7));
        assert_eq!(sequence_of("rhel-8.8-base-aws-20260212-1000", stem), Some(1000));
        assert_eq!(sequence_of("rhel-8.8-base-aws-20260212-", stem), None);
        assert_eq!(sequence_of("rhel-8.8-base-aws-20260212-007-b", stem), None);
        assert_eq!(sequence_of("rhel-8x8-base-aws-20260212-007", stem), None);
        assert_eq!(sequence_of("rhel-8.8-base-aws-20260212-99999999999", stem), None);
    }

    #[test]
    fn continues_after_the_highest_sequence_numerically() {
        let stem = "rhel-8.8-base-aws_gov-20260212-";
        let e = entries(&[
            "rhel-8.8-base-aws_gov-20260212-002",
            "rhel-8.8-base-aws_gov-20260212-999",
            "rhel-8.8-base-aws_gov-20260212-1000",
            "rhel-8.8-base-aws_gov-20260212-hotfix",
            "rhel-8.8-base-aws_gov-20260213-5000",
            "rhel-8.8-base-awsxgov-20260212-7000",
        ]);
        assert_eq!(next_number(&e, stem).expect("next").as_str(), "rhel-8.8-base-aws_gov-20260212-1001");
        let other = "rhel-8.8-base-aws_gov-20260214-";
        assert_eq!(next_number(&e, other).expect("next").as_str(), "rhel-8.8-base-aws_gov-20260214-001");
    }

    #[test]
    fn prefixes_are_literal() {
        let e = entries(&["rhel-8.8-a", "rhel-8x8-b", "zz"]);
        assert_eq!(prefix_candidates(&e, "rhel-8.").len(), 1);
        assert_eq!(prefix_candidates(&e, "rhel").len(), 2);
        for none in ["", "%", "_", "a b", "é", "*"] {
            assert!(prefix_candidates(&e, none).is_empty(), "{none:?}");
        }
    }
}
