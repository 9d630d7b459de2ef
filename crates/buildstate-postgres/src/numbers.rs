//! Build numbers: allocating the next in a day's sequence, and prefix ranges.
//!
//! Prefix matches are range comparisons (`x >= prefix AND x < upper`) rather than LIKE:
//! they use the indexes, and `_` (a LIKE wildcard) in platform names (`aws_gov`) means
//! only itself. Numbers are `COLLATE "C"`, so the ranges are byte ranges on any server.

use buildstate_core::BuildNumber;
use buildstate_store::{StoreError, StoreResult};
use deadpool_postgres::Transaction;
use uuid::Uuid;

use crate::error::PgContext;
use crate::rows::{self, execute};
use crate::sql;
pub(crate) use buildstate_store::{prefix_upper_bound, sequence_of};

/// The ids whose canonical text (`0190a3c5-…`, lowercase) starts with `prefix`, as the
/// closed range `[lowest, highest]`: uuids sort byte by byte, as their hex text does.
/// `None` when no id can start with `prefix` (a non-hex digit, a misplaced hyphen, too
/// long, or empty).
pub(crate) fn id_prefix_range(prefix: &str) -> Option<(Uuid, Uuid)> {
    const LOWEST: &str = "00000000-0000-0000-0000-000000000000";
    const HIGHEST: &str = "ffffffff-ffff-ffff-ffff-ffffffffffff";
    let prefix = prefix.to_ascii_lowercase();
    if prefix.is_empty() || prefix.len() > LOWEST.len() {
        return None;
    }
    let fits = prefix.bytes().zip(LOWEST.bytes()).all(|(c, shape)| match shape {
        b'-' => c == b'-',
        _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
    });
    if !fits {
        return None;
    }
    // `prefix` is ASCII from here on, so it ends on a character boundary of either shape.
    let low = Uuid::parse_str(&format!("{prefix}{}", &LOWEST[prefix.len()..])).ok()?;
    let high = Uuid::parse_str(&format!("{prefix}{}", &HIGHEST[prefix.len()..])).ok()?;
    Some((low, high))
}

/// The next free number of the day: one above the highest sequence taken under `stem`
/// (numbers chosen by hand included), from 001.
///
/// Takes the stem's advisory lock first (held to commit), so concurrent creates of one
/// triple on one day allocate one after another and each reads its predecessor's
/// number. A number chosen by hand takes no such lock; if one lands on the allocated
/// number in between, the insert hits the unique constraint and the create runs again.
pub(crate) async fn next_number(tx: &Transaction<'_>, stem: &str) -> StoreResult<BuildNumber> {
    let invalid = || StoreError::InvalidInput(format!("cannot allocate a build number under `{stem}`"));
    let upper = prefix_upper_bound(stem).ok_or_else(invalid)?;
    execute(tx, sql::LOCK_NUMBER_STEM, &[&stem], "lock the day's build numbers").await?;
    let taken = rows::all(tx, sql::NUMBERS_IN_RANGE, &[&stem, &upper], |r| {
        r.try_get::<_, String>(0).ctx("read a build number")
    })
    .await?;
    // Numerically, not as text: "…-1000" sorts before "…-999".
    let highest = taken.iter().filter_map(|n| sequence_of(n, stem)).max().unwrap_or(0);
    let next = highest.checked_add(1).ok_or_else(invalid)?;
    BuildNumber::with_sequence(stem, next).map_err(|e| StoreError::InvalidInput(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bounds() {
        assert_eq!(prefix_upper_bound("rhel-8.8-").as_deref(), Some("rhel-8.8."));
        assert_eq!(prefix_upper_bound("a_b").as_deref(), Some("a_c"));
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("é"), None);
        assert_eq!(prefix_upper_bound("a b"), None);
    }

    #[test]
    fn id_ranges_cover_exactly_the_ids_with_the_prefix() {
        let id = Uuid::parse_str("0190a3c5-7e4b-7c3d-8a1b-123456789abc").expect("valid uuid");
        let text = id.hyphenated().to_string();
        for len in 1..=text.len() {
            let (low, high) = id_prefix_range(&text[..len]).unwrap_or_else(|| panic!("prefix {len}"));
            assert!(low <= id && id <= high, "{}", &text[..len]);
        }
        let (low, high) = id_prefix_range("0190A3").expect("uppercase is accepted");
        assert_eq!(low.hyphenated().to_string(), "0190a300-0000-0000-0000-000000000000");
        assert_eq!(high.hyphenated().to_string(), "0190a3ff-ffff-ffff-ffff-ffffffffffff");
        let (low, high) = id_prefix_range("0190a3c5-").expect("a hyphen where ids have one");
        assert_eq!((low.as_u128() >> 96, high.as_u128() >> 96), (0x0190a3c5, 0x0190a3c5));
        let other = Uuid::parse_str("0190a3c6-0000-7000-8000-000000000000").expect("valid uuid");
        let (low, high) = id_prefix_range("0190a3c5").expect("range");
        assert!(!(low <= other && other <= high), "an id with another prefix is outside");
    }

    #[test]
    fn references_no_id_can_start_with_have_no_range() {
        for r in
            ["", "g", "0190a3c5x", "0190-", "%", "_", "*", "é", &"0".repeat(37), "'; DROP TABLE builds; --"]
        {
            assert_eq!(id_prefix_range(r), None, "{r}");
        }
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
}
