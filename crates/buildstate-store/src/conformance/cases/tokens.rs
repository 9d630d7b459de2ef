use buildstate_core::{Name, Scope, TokenRecord};
use jiff::{SignedDuration, Timestamp};

use crate::conformance::Harness;
use crate::tokens::{Refusal, authenticate, issue};
use crate::{Store, StoreError};

fn name(n: &str) -> Name {
    Name::new(n).expect("token name")
}

async fn new_token(
    st: &dyn Store,
    n: &str,
    scopes: &str,
    expires_at: Option<Timestamp>,
) -> (TokenRecord, String) {
    let (record, secret) =
        issue(name(n), scopes.parse().expect("scopes"), expires_at, Timestamp::now()).expect("issue");
    let stored = st.create_token(&record).await.expect("create token");
    assert_eq!(
        stored,
        TokenRecord { created_at: stored.created_at, ..record },
        "stored as given, created by the store's clock"
    );
    (stored, secret.reveal())
}

/// Tokens: stored as created (the secret's hash, never the secret), listed by name,
/// looked up by id; a name is unique; a presented token signs in only with its own
/// secret while it is neither expired nor revoked, and every refusal is told apart only
/// for the caller's logs; revoking keeps the record, by name or id, idempotently.
pub async fn tokens_are_stored_hashed_looked_up_and_revoked(h: &impl Harness) {
    let s = h.open().await;
    let st = s.as_ref();
    // A new store has no token but those its harness signs in with (a server's).
    let own = st.tokens().await.expect("list");
    let with_own = |mine: &[&TokenRecord]| {
        let mut all: Vec<TokenRecord> = own.iter().chain(mine.iter().copied()).cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    };

    let (ci, ci_text) = new_token(st, "ci-aws", "read,write", None).await;
    let (ro, ro_text) = new_token(st, "dashboard", "read", None).await;
    let listed = st.tokens().await.expect("list");
    assert_eq!(listed, with_own(&[&ci, &ro]), "by name, as created");
    assert!(
        !listed.iter().any(|t| ci_text.contains(&t.secret_sha256) || t.secret_sha256 == ci_text),
        "only the hash is kept"
    );
    assert_eq!(st.token(&ci.id).await.expect("lookup"), Some(ci.clone()));
    assert_eq!(st.token(&"000000000000".parse().expect("id")).await.expect("lookup"), None);

    let (dup, _) =
        issue(name("ci-aws"), "read".parse().expect("scopes"), None, Timestamp::now()).expect("issue");
    assert!(
        matches!(st.create_token(&dup).await, Err(StoreError::AlreadyExists { what: "token", .. })),
        "a name is unique"
    );
    assert_eq!(st.tokens().await.expect("list").len(), own.len() + 2, "a refused create adds nothing");

    // Whole microseconds, as stores keep times.
    let now = crate::now();
    let signed_in = authenticate(st, &ci_text, now).await.expect("authenticate").expect("signed in");
    assert_eq!(signed_in, ci);
    assert!(signed_in.scopes.allow(Scope::Write) && !signed_in.scopes.allow(Scope::Admin));
    assert!(
        authenticate(st, &ro_text, now).await.expect("auth").is_ok_and(|t| !t.scopes.allow(Scope::Write))
    );
    // The right id with another token's secret.
    let forged = format!("{}{}", &ci_text[..17], &ro_text[17..]);
    assert_eq!(authenticate(st, &forged, now).await.expect("auth"), Err(Refusal::WrongSecret));
    let unknown = format!("bst_000000000000{}", &ci_text[16..]);
    assert_eq!(authenticate(st, &unknown, now).await.expect("auth"), Err(Refusal::Unknown));
    assert_eq!(authenticate(st, "Bearer nonsense", now).await.expect("auth"), Err(Refusal::Malformed));

    let soon = now.checked_add(SignedDuration::from_secs(60)).expect("time");
    let (_, short_text) = new_token(st, "short-lived", "read", Some(soon)).await;
    assert!(authenticate(st, &short_text, now).await.expect("auth").is_ok());
    assert_eq!(authenticate(st, &short_text, soon).await.expect("auth"), Err(Refusal::Expired));

    let revoked = st.revoke_token("ci-aws").await.expect("revoke by name");
    assert!(revoked.revoked_at.is_some());
    assert_eq!(authenticate(st, &ci_text, now).await.expect("auth"), Err(Refusal::Revoked));
    let again = st.revoke_token(ci.id.as_str()).await.expect("revoke by id");
    assert_eq!(again.revoked_at, revoked.revoked_at, "revoking again keeps the first time");
    assert_eq!(st.token(&ci.id).await.expect("lookup"), Some(revoked), "a revoked token is kept");
    assert!(matches!(st.revoke_token("nope").await, Err(StoreError::TokenNotFound(r)) if r == "nope"));
}
