use std::fmt;
use std::path::PathBuf;

use object_store::path::Path;

use crate::{Env, SyncError};

/// Which kind of store a target URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    S3,
    Azure,
    Gcs,
    File,
}

/// Where build documents are copied: a parsed target URL plus the environment it is
/// configured from. See the crate documentation for the URL forms and variables.
#[derive(Clone, Debug)]
pub struct SyncTarget {
    url: String,
    kind: TargetKind,
    /// Bucket (S3, GCS) or container (Azure); for `file://`, empty.
    bucket: String,
    /// Object prefix inside the bucket; for `file://`, the directory is the root and
    /// the prefix is empty.
    prefix: Path,
    /// For `file://`: the directory.
    dir: PathBuf,
    env: Env,
}

/// A URL as error messages may show it: without user info in the authority and
/// without a query or fragment, where secrets live.
fn shown(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find('/').unwrap_or(rest.len());
            let authority = rest[..end].rsplit_once('@').map_or(&rest[..end], |(_, host)| host);
            format!("{scheme}://{authority}{}", &rest[end..])
        }
        None => url.to_owned(),
    }
}

impl SyncTarget {
    /// Parses `url`, taking endpoint and credential overrides from the process
    /// environment.
    pub fn parse(url: &str) -> Result<Self, SyncError> {
        Self::parse_with_env(url, Env::process())
    }

    pub fn parse_with_env(url: &str, env: Env) -> Result<Self, SyncError> {
        let bad = |reason: &str| SyncError::InvalidUrl { url: shown(url), reason: reason.to_owned() };
        if url.contains(['?', '#']) {
            return Err(bad(
                "query strings are not read (a SAS token or access token there would end up in logs): credentials come from the environment (AWS_*, AZURE_STORAGE_*, GOOGLE_*)",
            ));
        }
        let (scheme, rest) =
            url.split_once("://").ok_or_else(|| bad("expected s3://, az://, azure://, gs:// or file://"))?;
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "s3" => TargetKind::S3,
            "az" | "azure" => TargetKind::Azure,
            "gs" => TargetKind::Gcs,
            "file" => TargetKind::File,
            _ => return Err(bad("unknown scheme (use s3://, az://, azure://, gs:// or file://)")),
        };
        if kind == TargetKind::File {
            // file:///abs/dir — the authority must be empty (or localhost) and the path absolute.
            let path = rest.strip_prefix("localhost").unwrap_or(rest);
            if !path.starts_with('/') {
                return Err(bad("a file target needs an absolute path: file:///dir/prefix"));
            }
            let dir = PathBuf::from(path.trim_end_matches('/'));
            let dir = if dir.as_os_str().is_empty() { PathBuf::from("/") } else { dir };
            return Ok(SyncTarget {
                url: format!("file://{}", dir.display()),
                kind,
                bucket: String::new(),
                prefix: Path::default(),
                dir,
                env,
            });
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.contains(['@', ':']) {
            return Err(bad(
                "credentials in the URL are not read: give them in the environment (AWS_*, AZURE_STORAGE_*, GOOGLE_*)",
            ));
        }
        if bucket.is_empty() {
            return Err(bad("missing bucket or container name"));
        }
        let prefix = prefix.trim_matches('/');
        let prefix = Path::parse(prefix).map_err(|e| bad(&format!("bad prefix: {e}")))?;
        let scheme = match kind {
            TargetKind::S3 => "s3",
            TargetKind::Azure => "az",
            TargetKind::Gcs => "gs",
            TargetKind::File => "file",
        };
        let url = if prefix.is_root() {
            format!("{scheme}://{bucket}")
        } else {
            format!("{scheme}://{bucket}/{prefix}")
        };
        Ok(SyncTarget { url, kind, bucket: bucket.to_owned(), prefix, dir: PathBuf::new(), env })
    }

    /// The normalized URL (`s3://bucket/prefix`, `az://container/prefix`, …); it never
    /// holds secrets (URLs with credentials or query strings are refused by `parse`).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn kind(&self) -> TargetKind {
        self.kind
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    pub(crate) fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The environment the target is configured from (its `Debug` shows names only).
    pub fn env(&self) -> &Env {
        &self.env
    }
}

impl fmt::Display for SyncTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> SyncTarget {
        SyncTarget::parse_with_env(url, Env::default()).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn secrets_in_urls_are_refused_and_never_shown() {
        for url in [
            "az://acct/cont?sv=2020&sig=SASSECRET",
            "https://acct.blob.core.windows.net/c?sig=SASSECRET",
            "s3://KEYID:SASSECRET@bucket/x",
            "gs://bucket/x?access_token=SASSECRET",
            "gs://bucket/x#SASSECRET",
        ] {
            let err = SyncTarget::parse(url).expect_err(url).to_string();
            assert!(!err.contains("SASSECRET"), "{url}: {err}");
        }
    }

    #[test]
    fn urls_name_bucket_and_prefix() {
        let t = parse("s3://ci-state/teams/images/");
        assert_eq!((t.kind(), t.bucket(), t.prefix().as_ref()), (TargetKind::S3, "ci-state", "teams/images"));
        assert_eq!(t.url(), "s3://ci-state/teams/images");
        let t = parse("azure://builds");
        assert_eq!((t.kind(), t.bucket(), t.prefix().is_root()), (TargetKind::Azure, "builds", true));
        assert_eq!(t.url(), "az://builds");
        let t = parse("gs://b/p");
        assert_eq!((t.kind(), t.bucket(), t.prefix().as_ref()), (TargetKind::Gcs, "b", "p"));
        let t = parse("file:///var/lib/copies/");
        assert_eq!((t.kind(), t.dir()), (TargetKind::File, std::path::Path::new("/var/lib/copies")));
        assert_eq!(t.url(), "file:///var/lib/copies");
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (url, why) in [
            ("ci-state/prefix", "expected s3://"),
            ("ftp://x/y", "unknown scheme"),
            ("s3:///prefix", "missing bucket"),
            ("file://relative/dir", "absolute path"),
            ("s3://b/a//c", "bad prefix"),
        ] {
            let err = SyncTarget::parse_with_env(url, Env::default()).expect_err(url).to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
    }
}
