//! The conformance suite: one contract, every backend.
//!
//! A backend's test file provides a [`Harness`] and expands [`conformance_tests!`]:
//!
//! ```ignore
//! buildstate_store::conformance_tests!(my_backend::tests::harness());
//! ```
//!
//! Each case becomes its own `#[tokio::test]` (multi-threaded), so a failure names the
//! broken rule. Cases get fresh, empty stores from the harness; `open` may be called
//! more than once to get independent handles (connections) on the same store, which is
//! how the concurrency cases race real writers.

use std::sync::Arc;

use async_trait::async_trait;

use crate::Store;

/// Gives the suite handles on one fresh, empty store.
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// Another handle on the same store (a new connection where the backend has them).
    async fn open(&self) -> Arc<dyn Store>;
}

/// Expands to one `#[tokio::test]` per conformance case. `$harness` is an expression
/// (usually an `async` call) evaluating to a [`Harness`].
#[macro_export]
macro_rules! conformance_tests {
    ($harness:expr) => {
        $crate::conformance_tests!(@cases $harness;
            catalog_add_list_show_remove,
        );
    };
    (@cases $harness:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let harness = $harness;
                $crate::conformance::cases::$case(&harness).await;
            }
        )+
    };
}

/// The cases. Each takes a harness and panics (with a message naming the rule) when
/// the backend breaks the contract.
pub mod cases {
    use buildstate_core::{CatalogItem, CatalogKind, Name, Platform};

    use super::Harness;

    fn name(s: &str) -> Name {
        Name::new(s).expect("test names are valid")
    }

    pub async fn catalog_add_list_show_remove(h: &impl Harness) {
        let s = h.open().await;
        let p = CatalogItem::Platform(Platform {
            name: name("aws-commercial"),
            display_name: "AWS Commercial".into(),
            provider: "aws".into(),
            region: Some("us-east-1".into()),
        });
        s.add_catalog_item(&p).await.expect("add platform");
        let listed = s.catalog(CatalogKind::Platform).await.expect("list platforms");
        assert_eq!(listed, vec![p.clone()]);
        let shown = s.catalog_item(CatalogKind::Platform, &name("aws-commercial")).await.expect("show");
        assert_eq!(shown, p);
        s.remove_catalog_item(CatalogKind::Platform, &name("aws-commercial")).await.expect("remove");
        assert!(s.catalog(CatalogKind::Platform).await.expect("list").is_empty());
    }
}
