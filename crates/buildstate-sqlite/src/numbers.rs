//! Build numbers: allocating the next in a day's sequence, and prefix ranges.
//!
//! Prefix matches are range comparisons (`x >= prefix AND x < upper`) rather than LIKE:
//! they use the indexes, and `_` (a LIKE wildcard) and `.` in platform and OS names
//! (`aws_gov`, `rhel-8.8`) mean only themselves.

use buildstate_core::BuildNumber;
use buildstate_store::{StoreError, StoreResult};
use rusqlite::{Connection, params};

use crate::error::SqlContext;
use crate::{rows, sql};
pub(crate) use buildstate_store::{prefix_upper_bound, sequence_of};

/// The next free number of the day: one above the highest sequence taken under `stem`
/// (numbers chosen by hand included), from 001. Runs inside the creating write
/// transaction, so concurrent creates in the same second see each other's numbers.
pub(crate) fn next_number(conn: &Connection, stem: &str) -> StoreResult<BuildNumber> {
    let invalid = || StoreError::InvalidInput(format!("cannot allocate a build number under `{stem}`"));
    let upper = prefix_upper_bound(stem).ok_or_else(invalid)?;
    let taken = rows::all(conn, sql::NUMBERS_IN_RANGE, params![stem, upper], |r| {
        r.get::<_, String>(0).ctx("read a build number")
    })?;
    // Numerically, not as text: "…-1000" sorts before "…-999".
    let highest = taken.iter().filter_map(|n| sequence_of(n, stem)).max().unwrap_or(0);
    let next = highest.checked_add(1).ok_or_else(invalid)?;
    BuildNumber::with_sequence(stem, next).map_err(|e| StoreError::InvalidInput(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use buildstate_core::{CatalogItem, ImageType, Name, NewBuild, OsVersion, Platform, StateCatalog};

    use super::*;
    use crate::SqliteStore;

    #[test]
    fn upper_bounds() {
        assert_eq!(prefix_upper_bound("rhel-8.8-").as_deref(), Some("rhel-8.8."));
        assert_eq!(prefix_upper_bound("0190a").as_deref(), Some("0190b"));
        assert_eq!(prefix_upper_bound("a_b").as_deref(), Some("a_c"));
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("é"), None);
        assert_eq!(prefix_upper_bound("a b"), None);
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

    fn name(s: &str) -> Name {
        Name::new(s).expect("valid name")
    }

    /// A store whose catalog has every name the test uses, with builds under `numbers`.
    fn store_with_numbers(dir: &tempfile::TempDir, numbers: &[&str]) -> SqliteStore {
        let store = SqliteStore::open(dir.path().join("n.db")).expect("open");
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(async {
            use buildstate_store::Store;
            for item in [
                CatalogItem::Platform(Platform {
                    name: name("aws_gov"),
                    display_name: "x".into(),
                    provider: "aws".into(),
                    region: None,
                }),
                CatalogItem::Os(OsVersion {
                    name: name("rhel-8.8"),
                    display_name: "x".into(),
                    family: "rhel".into(),
                    major: 8,
                    minor: Some(8),
                }),
                CatalogItem::ImageType(ImageType {
                    name: name("base"),
                    display_name: "x".into(),
                    description: String::new(),
                }),
            ] {
                store.add_catalog_item(&item).await.expect("add catalog item");
            }
            for n in numbers {
                let new = NewBuild {
                    platform: name("aws_gov"),
                    os: name("rhel-8.8"),
                    image_type: name("base"),
                    number: Some(BuildNumber::new(n).expect("valid number")),
                    catalog: StateCatalog::default_catalog(),
                    created_by: "test".into(),
                    ci_url: None,
                    metadata: BTreeMap::new(),
                };
                store.create_build(&new).await.expect("create");
            }
        });
        store
    }

    fn next(store: &SqliteStore, stem: &str) -> String {
        store.write(|c| next_number(c, stem)).expect("allocate").to_string()
    }

    #[test]
    fn underscores_and_dots_are_not_wildcards() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Each would match `rhel-8.8-base-aws_gov-20260212-%` as a LIKE pattern.
        let store = store_with_numbers(
            &dir,
            &[
                "rhel-8.8-base-awsxgov-20260212-007",
                "rhel-8x8-base-aws_gov-20260212-009",
                "rhel-8.8-base-aws_gov-20260212x012",
            ],
        );
        assert_eq!(next(&store, "rhel-8.8-base-aws_gov-20260212-"), "rhel-8.8-base-aws_gov-20260212-001");
    }

    #[test]
    fn continues_after_the_highest_sequence_numerically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stem = "rhel-8.8-base-aws_gov-20260212-";
        let store = store_with_numbers(
            &dir,
            &[
                "rhel-8.8-base-aws_gov-20260212-002",
                "rhel-8.8-base-aws_gov-20260212-999",
                "rhel-8.8-base-aws_gov-20260212-1000",
                "rhel-8.8-base-aws_gov-20260212-hotfix",
                "rhel-8.8-base-aws_gov-20260213-5000",
            ],
        );
        assert_eq!(next(&store, stem), "rhel-8.8-base-aws_gov-20260212-1001");
        assert_eq!(next(&store, "rhel-8.8-base-aws_gov-20260214-"), "rhel-8.8-base-aws_gov-20260214-001");
    }
}
