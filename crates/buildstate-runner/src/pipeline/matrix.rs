//! Expanding `matrix:` into cells.
//!
//! The product of the three lists in file order (platform, then OS, then image), minus
//! the cells an `exclude` entry matches, plus the `include` entries, without duplicates.
//! `exclude` applies to the product only, so an `include` entry always lands.

use buildstate_core::Name;
use serde_saphyr::Location;

use super::error::Source;
use super::raw::{RawCell, RawMatrix, S};
use super::{MatrixCell, PipelineError};

const DIMENSIONS: &str = "`platform`, `os` and `image` lists (or only `include` entries)";

pub(super) fn expand(
    src: Source<'_>,
    raw: Option<&S<RawMatrix>>,
    root: Location,
) -> Result<Vec<MatrixCell>, PipelineError> {
    let Some(raw) = raw else {
        return Err(src.invalid(root, format!("missing key `matrix`; expected {DIMENSIONS}")));
    };
    let at = raw.referenced;
    let m = &raw.value;

    let platforms = dimension(src, m.platform.as_ref(), "platform")?;
    let oses = dimension(src, m.os.as_ref(), "os")?;
    let images = dimension(src, m.image.as_ref(), "image")?;
    let given = [&platforms, &oses, &images].iter().filter(|d| d.is_some()).count();
    let has_include = m.include.as_ref().is_some_and(|i| !i.is_empty());
    if given == 0 && !has_include {
        return Err(src.invalid(at, format!("the matrix is empty; expected {DIMENSIONS}")));
    }
    if given != 0 && given != 3 {
        let missing: Vec<&str> = [("platform", &platforms), ("os", &oses), ("image", &images)]
            .iter()
            .filter(|(_, d)| d.is_none())
            .map(|(word, _)| *word)
            .collect();
        return Err(src.invalid(
            at,
            format!("the matrix has no `{}` list; expected {DIMENSIONS}", missing.join("` or `")),
        ));
    }
    let (platforms, oses, images) =
        (platforms.unwrap_or_default(), oses.unwrap_or_default(), images.unwrap_or_default());

    let mut excludes = Vec::new();
    for entry in m.exclude.iter().flatten() {
        let cell = &entry.value;
        let pattern = [
            pattern_value(src, cell.platform.as_ref(), "platform", &platforms)?,
            pattern_value(src, cell.os.as_ref(), "os", &oses)?,
            pattern_value(src, cell.image.as_ref(), "image", &images)?,
        ];
        if pattern.iter().all(Option::is_none) {
            return Err(src.invalid(
                entry.referenced,
                "empty `exclude` entry; expected at least one of platform, os, image",
            ));
        }
        excludes.push(pattern);
    }

    let mut cells = Vec::new();
    for platform in &platforms {
        for os in &oses {
            for image in &images {
                let candidate = [platform, os, image];
                let excluded = excludes.iter().any(|pattern| {
                    pattern.iter().zip(candidate).all(|(want, have)| want.as_ref().is_none_or(|w| w == have))
                });
                if !excluded {
                    cells.push(MatrixCell {
                        platform: platform.clone(),
                        os: os.clone(),
                        image_type: image.clone(),
                    });
                }
            }
        }
    }
    if given == 3 && cells.is_empty() {
        return Err(
            src.invalid(at, "`exclude` removes every cell of the matrix; expected at least one to remain")
        );
    }

    for entry in m.include.iter().flatten() {
        let cell = include(src, entry)?;
        if !cells.contains(&cell) {
            cells.push(cell);
        }
    }
    Ok(cells)
}

/// One of the three lists: absent is `None`; present must be a non-empty list of names.
/// Repeated names are kept once.
fn dimension(
    src: Source<'_>,
    raw: Option<&S<Vec<S<String>>>>,
    word: &str,
) -> Result<Option<Vec<Name>>, PipelineError> {
    let Some(list) = raw else { return Ok(None) };
    if list.value.is_empty() {
        return Err(src.invalid(
            list.referenced,
            format!("matrix `{word}` is an empty list; expected at least one {word} name"),
        ));
    }
    let mut names: Vec<Name> = Vec::with_capacity(list.value.len());
    for item in &list.value {
        let name = name(src, item, word)?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(Some(names))
}

/// A valid [`Name`], or an error at `raw` saying which kind of name was expected.
pub(super) fn name(src: Source<'_>, raw: &S<String>, word: &str) -> Result<Name, PipelineError> {
    Name::new(&raw.value).map_err(|e| {
        src.invalid(
            raw.referenced,
            format!(
                "{word} `{}` is not a valid name; expected 1-64 characters from a-z, 0-9, `.`, `_`, `-`, \
                 starting with a letter or digit",
                e.0
            ),
        )
    })
}

/// An `exclude` value: must be one of the dimension's names, so that a typo is an error
/// rather than an exclusion that silently does nothing.
fn pattern_value(
    src: Source<'_>,
    raw: Option<&S<String>>,
    word: &str,
    allowed: &[Name],
) -> Result<Option<Name>, PipelineError> {
    let Some(raw) = raw else { return Ok(None) };
    let value = name(src, raw, word)?;
    if allowed.contains(&value) {
        return Ok(Some(value));
    }
    let list: Vec<&str> = allowed.iter().map(Name::as_str).collect();
    let expected = if list.is_empty() {
        format!("`exclude` needs a `{word}` list to exclude from")
    } else {
        format!("expected one of: {}", list.join(", "))
    };
    Err(src.invalid(
        raw.referenced,
        format!("`exclude` names {word} `{value}`, which is not in matrix `{word}`; {expected}"),
    ))
}

fn include(src: Source<'_>, entry: &S<RawCell>) -> Result<MatrixCell, PipelineError> {
    let cell = &entry.value;
    let part = |raw: Option<&S<String>>, word: &str| match raw {
        Some(raw) => name(src, raw, word),
        None => Err(src.invalid(
            entry.referenced,
            format!("`include` entry has no `{word}`; expected a whole cell: platform, os and image"),
        )),
    };
    Ok(MatrixCell {
        platform: part(cell.platform.as_ref(), "platform")?,
        os: part(cell.os.as_ref(), "os")?,
        image_type: part(cell.image.as_ref(), "image")?,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::raw::RawPipeline;
    use super::*;

    fn cells(yaml: &str) -> Result<Vec<String>, String> {
        let file = Path::new("p.yml");
        let raw: S<RawPipeline> =
            serde_saphyr::from_str(yaml).map_err(|e| PipelineError::yaml(file, &e).to_string())?;
        let src = Source { file };
        expand(src, raw.value.matrix.as_ref(), raw.referenced)
            .map(|cells| cells.iter().map(ToString::to_string).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn product_in_file_order() {
        let got = cells("matrix:\n  platform: [b, a]\n  os: [x]\n  image: [2, 1]\n").expect("valid");
        assert_eq!(got, ["b/x/2", "b/x/1", "a/x/2", "a/x/1"]);
    }

    #[test]
    fn exclude_then_include_then_dedupe() {
        let yaml = "matrix:
  platform: [aws, azure, gcp, aws]
  os: [rhel-9.6, sles-15.7]
  image: [base, hana]
  exclude:
    - {platform: gcp, image: hana}
    - {os: sles-15.7, platform: azure}
  include:
    - {platform: openstack, os: ubuntu-24.04, image: base}
    - {platform: gcp, os: rhel-9.6, image: hana}
    - {platform: aws, os: rhel-9.6, image: base}
    - {platform: openstack, os: ubuntu-24.04, image: base}
";
        let got = cells(yaml).expect("valid");
        assert_eq!(
            got,
            [
                "aws/rhel-9.6/base",
                "aws/rhel-9.6/hana",
                "aws/sles-15.7/base",
                "aws/sles-15.7/hana",
                "azure/rhel-9.6/base",
                "azure/rhel-9.6/hana",
                "gcp/rhel-9.6/base",
                "gcp/sles-15.7/base",
                "openstack/ubuntu-24.04/base",
                // excluded from the product, then included back explicitly
                "gcp/rhel-9.6/hana",
            ]
        );
    }

    #[test]
    fn include_only_matrix() {
        let got = cells("matrix:\n  include:\n    - {platform: a, os: b, image: c}\n").expect("valid");
        assert_eq!(got, ["a/b/c"]);
    }

    #[test]
    fn errors_point_at_the_offending_node() {
        let err = |yaml: &str| cells(yaml).expect_err("invalid");
        assert_eq!(
            err("name: x\n"),
            "p.yml:1:1: missing key `matrix`; expected `platform`, `os` and `image` lists (or only `include` entries)"
        );
        assert_eq!(
            err("matrix:\n  platform: []\n  os: [a]\n  image: [b]\n"),
            "p.yml:2:13: matrix `platform` is an empty list; expected at least one platform name"
        );
        assert_eq!(
            err("matrix:\n  platform: [a]\n  image: [b]\n"),
            "p.yml:2:3: the matrix has no `os` list; expected `platform`, `os` and `image` lists (or only `include` entries)"
        );
        assert_eq!(
            err("matrix: {}\n"),
            "p.yml:1:9: the matrix is empty; expected `platform`, `os` and `image` lists (or only `include` entries)"
        );
        assert_eq!(
            err("matrix:\n  platform: [a, Bad]\n  os: [a]\n  image: [b]\n"),
            "p.yml:2:17: platform `Bad` is not a valid name; expected 1-64 characters from a-z, 0-9, `.`, `_`, `-`, \
             starting with a letter or digit"
        );
        assert_eq!(
            err("matrix:\n  platform: [a]\n  os: [a]\n  image: [b]\n  exclude: [{platform: c}]\n"),
            "p.yml:5:24: `exclude` names platform `c`, which is not in matrix `platform`; expected one of: a"
        );
        assert_eq!(
            err("matrix:\n  platform: [a]\n  os: [a]\n  image: [b]\n  exclude: [{}]\n"),
            "p.yml:5:13: empty `exclude` entry; expected at least one of platform, os, image"
        );
        assert_eq!(
            err("matrix:\n  platform: [a]\n  os: [a]\n  image: [b]\n  exclude: [{os: a}]\n"),
            "p.yml:2:3: `exclude` removes every cell of the matrix; expected at least one to remain"
        );
        assert_eq!(
            err("matrix:\n  include:\n    - {platform: a, image: c}\n"),
            "p.yml:3:7: `include` entry has no `os`; expected a whole cell: platform, os and image"
        );
        assert_eq!(
            err("matrix:\n  include: [{platform: a, os: b, image: c, arch: x}]\n"),
            "p.yml:2:44: unknown key `arch`; expected one of: platform, os, image"
        );
    }
}
