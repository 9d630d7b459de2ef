//! `--only` filters over the matrix.
//!
//! Each spec is `key=value[,key=value…]` with keys `platform`, `os` and `image`; a value
//! ending in `*` matches by prefix. A cell matches a spec when it matches every pair of
//! it, and is selected when it matches any spec; no specs select every cell.

use buildstate_core::Name;

use super::{MatrixCell, PipelineError};

/// A selection of matrix cells, from `--only` flags.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MatrixFilter {
    /// Alternatives; empty selects everything.
    specs: Vec<Vec<(Key, Pattern)>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Platform,
    Os,
    Image,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    Prefix(String),
}

impl MatrixFilter {
    /// Every cell.
    pub fn all() -> Self {
        MatrixFilter::default()
    }

    pub fn parse(specs: &[String]) -> Result<MatrixFilter, PipelineError> {
        let specs = specs.iter().map(|s| parse_spec(s)).collect::<Result<_, _>>()?;
        Ok(MatrixFilter { specs })
    }

    /// Whether no `--only` was given.
    pub fn is_all(&self) -> bool {
        self.specs.is_empty()
    }

    pub fn matches(&self, cell: &MatrixCell) -> bool {
        self.specs.is_empty()
            || self.specs.iter().any(|pairs| {
                pairs.iter().all(|(key, pattern)| {
                    let value = match key {
                        Key::Platform => &cell.platform,
                        Key::Os => &cell.os,
                        Key::Image => &cell.image_type,
                    };
                    pattern.matches(value.as_str())
                })
            })
    }
}

/// The flags that make this filter, normalised: `--only platform=aws*,os=rhel-9.6
/// --only image=hana`; `every cell` for no flags.
impl std::fmt::Display for MatrixFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.specs.is_empty() {
            return f.write_str("every cell");
        }
        let specs: Vec<String> = self
            .specs
            .iter()
            .map(|pairs| {
                let pairs: Vec<String> = pairs
                    .iter()
                    .map(|(key, pattern)| match pattern {
                        Pattern::Exact(v) => format!("{}={v}", key.word()),
                        Pattern::Prefix(v) => format!("{}={v}*", key.word()),
                    })
                    .collect();
                format!("--only {}", pairs.join(","))
            })
            .collect();
        f.write_str(&specs.join(" "))
    }
}

impl Pattern {
    fn matches(&self, value: &str) -> bool {
        match self {
            Pattern::Exact(want) => value == want,
            Pattern::Prefix(prefix) => value.starts_with(prefix.as_str()),
        }
    }
}

const SYNTAX: &str = "expected key=value[,key=value…] with keys platform, os, image \
                      (a value may end with * to match a prefix), e.g. platform=aws*,os=rhel-9.6";

fn parse_spec(spec: &str) -> Result<Vec<(Key, Pattern)>, PipelineError> {
    let fail = |what: String| PipelineError::filter(format!("--only `{spec}`: {what}; {SYNTAX}"));
    if spec.trim().is_empty() {
        return Err(fail("empty filter".to_owned()));
    }
    let mut pairs: Vec<(Key, Pattern)> = Vec::new();
    for pair in spec.split(',') {
        let pair = pair.trim();
        let Some((key, value)) = pair.split_once('=') else {
            return Err(fail(format!("`{pair}` has no `=`")));
        };
        let key = match key.trim() {
            "platform" => Key::Platform,
            "os" => Key::Os,
            "image" => Key::Image,
            other => return Err(fail(format!("unknown key `{other}`"))),
        };
        if pairs.iter().any(|(k, _)| *k == key) {
            return Err(fail(format!(
                "`{}` is given twice, which no cell can match (give two --only flags to select either)",
                key.word()
            )));
        }
        let value = value.trim();
        let pattern = match value.strip_suffix('*') {
            Some(prefix) if !prefix.contains('*') => Pattern::Prefix(prefix.to_owned()),
            _ if value.contains('*') => {
                return Err(fail(format!("`{value}` has a `*` that is not at its end")));
            }
            _ => Pattern::Exact(value.to_owned()),
        };
        let name_part = match &pattern {
            Pattern::Exact(v) | Pattern::Prefix(v) => v.as_str(),
        };
        // A prefix may be empty (`os=*`); a whole value must be a name that can exist.
        if (matches!(pattern, Pattern::Exact(_)) || !name_part.is_empty()) && Name::new(name_part).is_err() {
            return Err(fail(format!("`{value}` is not a valid {} name", key.word())));
        }
        pairs.push((key, pattern));
    }
    Ok(pairs)
}

impl Key {
    fn word(self) -> &'static str {
        match self {
            Key::Platform => "platform",
            Key::Os => "os",
            Key::Image => "image",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(platform: &str, os: &str, image: &str) -> MatrixCell {
        let n = |s: &str| Name::new(s).expect("valid name");
        MatrixCell { platform: n(platform), os: n(os), image_type: n(image) }
    }

    fn filter(specs: &[&str]) -> MatrixFilter {
        let specs: Vec<String> = specs.iter().map(|s| (*s).to_owned()).collect();
        MatrixFilter::parse(&specs).expect("valid filter")
    }

    fn error(specs: &[&str]) -> String {
        let specs: Vec<String> = specs.iter().map(|s| (*s).to_owned()).collect();
        MatrixFilter::parse(&specs).expect_err("invalid filter").to_string()
    }

    #[test]
    fn no_specs_select_everything() {
        let c = cell("gcp", "rhel-9.6", "base");
        assert!(MatrixFilter::all().matches(&c));
        assert!(filter(&[]).matches(&c));
        assert!(filter(&[]).is_all());
        assert!(!filter(&["os=*"]).is_all());
    }

    #[test]
    fn pairs_are_and_specs_are_or() {
        let f = filter(&["platform=aws*,os=rhel-9.6", "image=hana"]);
        assert!(f.matches(&cell("aws-commercial", "rhel-9.6", "base")));
        assert!(f.matches(&cell("aws-govcloud", "rhel-9.6", "base")));
        assert!(!f.matches(&cell("aws-commercial", "sles-15.7", "base")));
        assert!(f.matches(&cell("azure", "sles-15.7", "hana")));
        assert!(!f.matches(&cell("azure", "sles-15.7", "base")));
    }

    #[test]
    fn filters_print_as_the_flags_that_make_them() {
        assert_eq!(
            filter(&[" platform = aws* , os=rhel-9.6", "image=hana"]).to_string(),
            "--only platform=aws*,os=rhel-9.6 --only image=hana"
        );
        assert_eq!(MatrixFilter::all().to_string(), "every cell");
    }

    #[test]
    fn exact_values_do_not_match_prefixes() {
        let f = filter(&["platform=aws"]);
        assert!(f.matches(&cell("aws", "rhel-9.6", "base")));
        assert!(!f.matches(&cell("aws-commercial", "rhel-9.6", "base")));
        let any = filter(&["os=*"]);
        assert!(any.matches(&cell("aws", "sles-15.7", "base")));
        let spaced = filter(&[" platform = gcp , image = base "]);
        assert!(spaced.matches(&cell("gcp", "sles-15.7", "base")));
    }

    #[test]
    fn malformed_specs_are_refused_with_the_syntax() {
        assert_eq!(
            error(&["platform=aws", "flavour=large"]),
            "--only `flavour=large`: unknown key `flavour`; expected key=value[,key=value…] with keys \
             platform, os, image (a value may end with * to match a prefix), e.g. platform=aws*,os=rhel-9.6"
        );
        assert!(error(&["aws"]).starts_with("--only `aws`: `aws` has no `=`; expected key=value"));
        assert!(error(&[""]).starts_with("--only ``: empty filter; expected"));
        assert!(
            error(&["os=*rhel"]).starts_with("--only `os=*rhel`: `*rhel` has a `*` that is not at its end;")
        );
        assert!(error(&["os=rh*el*"]).contains("`rh*el*` has a `*` that is not at its end"));
        assert!(error(&["os="]).starts_with("--only `os=`: `` is not a valid os name;"));
        assert!(error(&["image=HANA"]).starts_with("--only `image=HANA`: `HANA` is not a valid image name;"));
        assert!(error(&["os=a,os=b"]).starts_with(
            "--only `os=a,os=b`: `os` is given twice, which no cell can match (give two --only flags to select either);"
        ));
        assert!(error(&["platform=aws,"]).contains("`` has no `=`"));
    }
}
