//! `token create|list|revoke`: a token is printed once and the store keeps only its
//! hash; listing never shows a secret; mistakes are clear errors that change nothing.

use crate::common::Env;

fn store() -> Env {
    let env = Env::new();
    env.ok(&["init"]);
    env
}

#[test]
fn a_token_is_shown_once_and_stored_only_as_a_hash() {
    let env = store();
    let r = env.run(&["token", "create", "--name", "ci-aws", "--scopes", "read,write", "--expires", "90d"]);
    assert_eq!(r.code, 0, "{r:?}");
    let token = r.stdout.trim().to_owned();
    assert!(token.starts_with("bst_") && token.len() == 4 + 12 + 1 + 64, "{token}");
    assert!(r.stderr.contains("copy it now, it is not shown again"), "{}", r.stderr);
    let secret = &token[17..];
    let db = std::fs::read(&env.db).expect("read the store file");
    let wal = std::fs::read(env.db.with_extension("db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "the secret is never stored");
    }
    let list = env.ok(&["token", "list"]);
    assert!(list.contains("ci-aws") && list.contains("read,write") && list.contains("active"), "{list}");
    assert!(!list.contains(secret));
    let json = env.json(&["token", "list"]);
    assert_eq!(json[0]["name"], "ci-aws");
    assert!(json[0].get("secret").is_none() && json[0].get("secret_sha256").is_none(), "{json}");
    assert!(!json.to_string().contains(secret));
}

#[test]
fn revoking_keeps_the_token_listed_as_revoked() {
    let env = store();
    let created = env.json(&["token", "create", "--name", "dashboard", "--scopes", "read"]);
    let id = created["id"].as_str().expect("an id").to_owned();
    assert!(created["secret"].as_str().is_some_and(|s| s.starts_with("bst_")), "json gives the secret once");
    env.ok(&["token", "revoke", "dashboard"]);
    let again = env.json(&["token", "revoke", &id]);
    assert_eq!(again["status"], "revoked", "revoking by id, again, is fine");
    let list = env.json(&["token", "list"]);
    assert_eq!(list[0]["status"], "revoked");
}

#[test]
fn token_mistakes_are_clear_and_change_nothing() {
    let env = store();
    env.ok(&["token", "create", "--name", "ci", "--scopes", "write"]);
    let e = env.fails(&["token", "create", "--name", "ci", "--scopes", "read"], 5);
    assert!(e.contains("token `ci` already exists"), "{e}");
    let e = env.fails(&["token", "create", "--name", "x", "--scopes", "reed"], 2);
    assert!(e.contains("unknown scope `reed`"), "{e}");
    let e = env.fails(&["token", "create", "--name", "Bad Name", "--scopes", "read"], 2);
    assert!(e.contains("Bad Name") || e.contains("--name"), "{e}");
    let e =
        env.fails(&["token", "create", "--name", "old", "--scopes", "read", "--expires", "2020-01-01"], 2);
    assert!(e.contains("in the past"), "{e}");
    let e = env.fails(&["token", "revoke", "nope"], 3);
    assert!(e.contains("no token matches `nope`"), "{e}");
    let list = env.json(&["token", "list"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "only the first create stored anything: {list}");
    let fresh = Env::new();
    fresh.fails(&["token", "list"], 3);
}
