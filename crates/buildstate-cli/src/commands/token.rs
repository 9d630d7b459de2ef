//! `token create|list|revoke`: the API tokens `buildstate serve` accepts.
//!
//! A token is printed once, by `create`; the store keeps its SHA-256 only, so a lost
//! token is revoked and a new one made, never shown again.

use buildstate_core::{Name, Scopes, TokenRecord};
use jiff::Timestamp;
use serde::Serialize;

use crate::cli::Ctx;
use crate::exit::CliError;
use crate::input::{Since, since_or_ago};
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Make a token and print it once (the store keeps only its hash)
    Create {
        /// Who or what it is for (ci-aws, dashboard): unique, lowercase
        #[arg(long)]
        name: Name,
        /// read, write or admin, comma-separated; each includes the ones before it
        #[arg(long, value_parser = parse_scopes)]
        scopes: Scopes,
        /// Refused after this long (90d, 12h) or this time; never, if not given
        #[arg(long, value_parser = since_or_ago)]
        expires: Option<Since>,
    },
    /// Every token: id, name, scopes, created, expiry, active/expired/revoked (never the secret)
    List,
    /// Refuse a token from now on (it stays listed, as revoked)
    Revoke {
        /// The token's name or id
        token: String,
    },
}

fn parse_scopes(raw: &str) -> Result<Scopes, String> {
    raw.parse().map_err(|e: buildstate_core::TokenError| e.to_string())
}

/// A token as scripts read it: never the secret, nor its hash.
#[derive(Debug, Serialize)]
struct TokenView<'a> {
    id: &'a str,
    name: &'a str,
    scopes: String,
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
    status: &'static str,
}

impl<'a> TokenView<'a> {
    fn new(t: &'a TokenRecord, now: Timestamp) -> Self {
        TokenView {
            id: t.id.as_str(),
            name: t.name.as_str(),
            scopes: t.scopes.to_string(),
            created_at: t.created_at,
            expires_at: t.expires_at,
            revoked_at: t.revoked_at,
            status: t.standing(now),
        }
    }
}

pub async fn run(args: Args, ctx: &Ctx) -> Result<(), CliError> {
    match args {
        Args::Create { name, scopes, expires } => create(ctx, name, scopes, expires).await,
        Args::List => list(ctx).await,
        Args::Revoke { token } => revoke(ctx, &token).await,
    }
}

async fn create(ctx: &Ctx, name: Name, scopes: Scopes, expires: Option<Since>) -> Result<(), CliError> {
    let now = buildstate_store::now();
    let expires_at = match expires {
        None => None,
        Some(Since::At(t)) if t <= now => {
            return Err(CliError::usage(format!(
                "--expires {} is in the past: give how long the token should last (90d) or a later time",
                output::time(t)
            )));
        }
        Some(Since::At(t)) => Some(t),
        Some(Since::Ago(d)) => Some(
            jiff::SignedDuration::try_from(d)
                .ok()
                .and_then(|d| now.checked_add(d).ok())
                .ok_or_else(|| CliError::usage("--expires is too far in the future"))?,
        ),
    };
    let (record, secret) = buildstate_store::tokens::issue(name, scopes, expires_at, now)?;
    let stored = ctx.store.create_token(&record).await?;
    let text = secret.reveal();
    if ctx.json {
        #[derive(Serialize)]
        struct Created<'a> {
            #[serde(flatten)]
            token: TokenView<'a>,
            /// The only time it is shown.
            secret: &'a str,
        }
        return output::json(&Created { token: TokenView::new(&stored, now), secret: &text });
    }
    output::line(&text)?;
    let until =
        stored.expires_at.map_or_else(|| "no expiry".to_owned(), |t| format!("expires {}", output::time(t)));
    output::notice(format!(
        "token {} ({}, {}, {until}): copy it now, it is not shown again; `buildstate token revoke {}` withdraws it",
        stored.id, stored.name, stored.scopes, stored.name
    ));
    Ok(())
}

async fn list(ctx: &Ctx) -> Result<(), CliError> {
    let tokens = ctx.store.tokens().await?;
    let now = buildstate_store::now();
    if ctx.json {
        let views: Vec<TokenView<'_>> = tokens.iter().map(|t| TokenView::new(t, now)).collect();
        return output::json(&views);
    }
    if tokens.is_empty() {
        return output::line("no token; make one with `buildstate token create --name NAME --scopes read`");
    }
    let mut t = output::table(&["ID", "NAME", "SCOPES", "CREATED", "EXPIRES", "STATUS"]);
    for tok in &tokens {
        t.add_row(vec![
            tok.id.to_string(),
            tok.name.to_string(),
            tok.scopes.to_string(),
            output::time(tok.created_at),
            output::opt_time(tok.expires_at),
            tok.standing(now).to_owned(),
        ]);
    }
    output::print_table(&t)
}

async fn revoke(ctx: &Ctx, reference: &str) -> Result<(), CliError> {
    let revoked = ctx.store.revoke_token(reference).await?;
    let now = buildstate_store::now();
    if ctx.json {
        return output::json(&TokenView::new(&revoked, now));
    }
    output::line(format!(
        "revoked token {} ({}) at {}; requests with it are refused from now on",
        revoked.id,
        revoked.name,
        output::opt_time(revoked.revoked_at)
    ))
}
