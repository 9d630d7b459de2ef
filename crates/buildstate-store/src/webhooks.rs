//! Drawing webhook ids and secrets, and signing a delivery the Standard Webhooks way
//! (<https://www.standardwebhooks.com>): `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{webhook-id}.{webhook-timestamp}.{body}">`, keyed by the base64 bytes after
//! `whsec_`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use buildstate_core::{SECRET_PREFIX, WebhookId};
use ring::hmac;

use crate::{StoreError, StoreResult};

/// A new endpoint id and signing secret (24 random bytes) from the system's random
/// source.
pub fn draw() -> StoreResult<(WebhookId, String)> {
    use ring::rand::SecureRandom;
    let mut id = [0u8; 6];
    let mut secret = [0u8; 24];
    let rng = ring::rand::SystemRandom::new();
    let failed = |_| StoreError::Backend {
        context: "draw random bytes for a webhook",
        source: "the system's random source failed".into(),
    };
    rng.fill(&mut id).map_err(failed)?;
    rng.fill(&mut secret).map_err(failed)?;
    Ok((WebhookId::from_bytes(id), format!("{SECRET_PREFIX}{}", STANDARD.encode(secret))))
}

/// The `webhook-signature` header's value for one delivery attempt: `v1,<base64>`.
/// `None` for a secret that is not `whsec_<base64>` (never stored: `NewWebhook::check`).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    let tag = hmac::sign(&key, format!("{id}.{timestamp}.{body}").as_bytes());
    Some(format!("v1,{}", STANDARD.encode(tag.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification, so that any receiver's
    /// library verifies what the server sends.
    #[test]
    fn signs_like_the_standard_webhooks_reference() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn drawn_secrets_are_accepted_and_distinct() {
        let (a_id, a) = draw().unwrap();
        let (b_id, b) = draw().unwrap();
        assert_ne!((a_id, &a), (b_id, &b));
        assert!(sign(&a, "x", 1, "").is_some());
        assert!(sign("nope", "x", 1, "").is_none());
    }
}
