//! A fresh store needs no hand-made catalog: what a command names but the catalog lacks
//! is reported with the exact `buildstate … add` command that adds it, or — with
//! `--add-missing` — added when it is a well-known name (the sample catalog's, with its
//! known attributes). `build create` and `run` both come here, so the hint reads the
//! same wherever a name is missing.

use buildstate_core::{CatalogItem, CatalogKind, Name};
use buildstate_runner::pipeline::MatrixCell;
use buildstate_store::{Store, StoreError};

use crate::exit::CliError;
use crate::{output, sample};

/// Checks that every `(kind, name)` is in the store's catalog. With `add_missing`, adds
/// the missing names when they are all well known, and returns what it added. Otherwise
/// refuses (exit 3, "not found"), adding nothing, with one hint naming the command that
/// adds each item.
pub async fn ensure(
    store: &dyn Store,
    names: &[(CatalogKind, &Name)],
    add_missing: bool,
) -> Result<Vec<CatalogItem>, CliError> {
    let mut missing: Vec<(CatalogKind, &Name, String)> = Vec::new();
    for &(kind, name) in names {
        if missing.iter().any(|(k, n, _)| *k == kind && *n == name) {
            continue;
        }
        match store.catalog_item(kind, name).await {
            Ok(_) => {}
            Err(StoreError::CatalogItemNotFound { known, .. }) => missing.push((kind, name, known)),
            Err(e) => return Err(e.into()),
        }
    }
    // With --add-missing, refuse before adding anything when a name is not well known:
    // an error leaves the store as it was.
    let refused: Vec<&(CatalogKind, &Name, String)> =
        missing.iter().filter(|(kind, name, _)| !add_missing || well_known(*kind, name).is_none()).collect();
    if !refused.is_empty() {
        let what: Vec<String> =
            refused.iter().map(|(kind, name, known)| format!("{kind} `{name}` (known: {known})")).collect();
        let verb = if refused.len() == 1 { "is" } else { "are" };
        let message = format!("{} {verb} not in the catalog of {}", and_list(&what), store.location());
        let pairs: Vec<(CatalogKind, &Name)> = refused.iter().map(|(k, n, _)| (*k, *n)).collect();
        return Err(CliError::not_found(message).with_hint(hint(&pairs, add_missing)));
    }
    let mut added = Vec::new();
    for (kind, name, _) in missing {
        let Some(item) = well_known(kind, name) else { continue };
        match store.add_catalog_item(&item).await {
            // Added meanwhile by someone else: that is the goal anyway.
            Ok(()) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        output::notice(format!("added {kind} {name} ({})", describe(&item)));
        added.push(item);
    }
    Ok(added)
}

/// [`ensure`] for the platforms, OS versions and image types of matrix cells (`run`).
pub async fn ensure_cells(
    store: &dyn Store,
    cells: &[&MatrixCell],
    add_missing: bool,
) -> Result<Vec<CatalogItem>, CliError> {
    let names: Vec<(CatalogKind, &Name)> = cells
        .iter()
        .flat_map(|c| {
            [
                (CatalogKind::Platform, &c.platform),
                (CatalogKind::Os, &c.os),
                (CatalogKind::ImageType, &c.image_type),
            ]
        })
        .collect();
    ensure(store, &names, add_missing).await
}

/// The hint for catalog items that are missing: the command that adds each one, with
/// every flag `add` requires, and whether `--add-missing` would add them instead.
pub fn hint(missing: &[(CatalogKind, &Name)], tried_add_missing: bool) -> String {
    let commands: Vec<String> =
        missing.iter().map(|&(kind, name)| format!("`{}`", add_command(kind, name))).collect();
    let all_known = missing.iter().all(|&(kind, name)| well_known(kind, name).is_some());
    let head = format!("add {} with {}", if missing.len() == 1 { "it" } else { "them" }, and_list(&commands));
    if tried_add_missing {
        format!("--add-missing adds only well-known names (the sample catalog's); {head}")
    } else if all_known {
        format!("{head}, or pass --add-missing to add these well-known names")
    } else {
        head
    }
}

/// `buildstate platform add NAME --provider P` (and so on), with every required flag:
/// the known attributes of a well-known name; for another name what it tells (an OS
/// `rhel-9.7` is family rhel, 9.7; a platform `aws-eu` is on aws), else placeholders.
pub fn add_command(kind: CatalogKind, name: &Name) -> String {
    let mut c = format!("buildstate {kind} add {name}");
    match well_known(kind, name) {
        Some(CatalogItem::Platform(p)) => {
            c += &format!(" --provider {}", p.provider);
            if let Some(region) = &p.region {
                c += &format!(" --region {region}");
            }
        }
        Some(CatalogItem::Os(o)) => {
            c += &format!(" --family {} --major {}", o.family, o.major);
            if let Some(minor) = o.minor {
                c += &format!(" --minor {minor}");
            }
        }
        Some(CatalogItem::ImageType(_)) => {}
        None => match kind {
            CatalogKind::Platform => {
                let provider = PROVIDERS
                    .iter()
                    .find(|p| name.as_str() == **p || name.as_str().starts_with(&format!("{p}-")));
                c += &format!(" --provider {}", provider.copied().unwrap_or("PROVIDER"));
            }
            CatalogKind::Os => match os_version(name.as_str()) {
                Some((family, major, minor)) => {
                    c += &format!(" --family {family} --major {major}");
                    if let Some(minor) = minor {
                        c += &format!(" --minor {minor}");
                    }
                }
                None => c += " --family FAMILY --major N",
            },
            CatalogKind::ImageType => {}
        },
    }
    c
}

/// The providers of the sample catalog's platforms.
const PROVIDERS: [&str; 5] = ["aws", "azure", "gcp", "openstack", "cloudfoundry"];

/// The sample catalog's item of this kind and name.
pub fn well_known(kind: CatalogKind, name: &Name) -> Option<CatalogItem> {
    sample::catalog().ok()?.into_iter().find(|i| i.kind() == kind && i.name() == name)
}

/// `rhel-9.7` → (`rhel`, 9, Some(7)); `debian-12` → (`debian`, 12, None).
fn os_version(name: &str) -> Option<(&str, u32, Option<u32>)> {
    let (family, version) = name.rsplit_once('-')?;
    if family.is_empty() || !family.starts_with(|c: char| c.is_ascii_lowercase()) {
        return None;
    }
    let (major, minor) = match version.split_once('.') {
        Some((major, minor)) => (major, Some(minor.parse().ok()?)),
        None => (version, None),
    };
    Some((family, major.parse().ok()?, minor))
}

fn describe(item: &CatalogItem) -> String {
    match item {
        CatalogItem::Platform(p) => match &p.region {
            Some(region) => format!("provider {}, region {region}", p.provider),
            None => format!("provider {}", p.provider),
        },
        CatalogItem::Os(o) => o.display_name.clone(),
        CatalogItem::ImageType(i) => i.display_name.clone(),
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::new(s).expect("valid name")
    }

    #[test]
    fn add_commands_carry_every_required_flag() {
        let cases = [
            (
                CatalogKind::Platform,
                "azure",
                "buildstate platform add azure --provider azure --region eastus",
            ),
            (
                CatalogKind::Platform,
                "cloudfoundry",
                "buildstate platform add cloudfoundry --provider cloudfoundry",
            ),
            (CatalogKind::Platform, "aws-eu", "buildstate platform add aws-eu --provider aws"),
            (CatalogKind::Platform, "vmware", "buildstate platform add vmware --provider PROVIDER"),
            (CatalogKind::Os, "rhel-9.6", "buildstate os add rhel-9.6 --family rhel --major 9 --minor 6"),
            (CatalogKind::Os, "sles-15", "buildstate os add sles-15 --family sles --major 15"),
            (CatalogKind::Os, "rhel-9.7", "buildstate os add rhel-9.7 --family rhel --major 9 --minor 7"),
            (CatalogKind::Os, "debian-12", "buildstate os add debian-12 --family debian --major 12"),
            (CatalogKind::Os, "windows", "buildstate os add windows --family FAMILY --major N"),
            (CatalogKind::Os, "x-1.y", "buildstate os add x-1.y --family FAMILY --major N"),
            (CatalogKind::ImageType, "hana", "buildstate image-type add hana"),
            (CatalogKind::ImageType, "gpu", "buildstate image-type add gpu"),
        ];
        for (kind, n, expected) in cases {
            assert_eq!(add_command(kind, &name(n)), expected);
        }
    }

    #[test]
    fn the_hint_says_what_adds_each_item() {
        let (azure, gpu, rhel) = (name("azure"), name("gpu"), name("rhel-8.8"));
        assert_eq!(
            hint(&[(CatalogKind::Platform, &azure), (CatalogKind::Os, &rhel)], false),
            "add them with `buildstate platform add azure --provider azure --region eastus` and \
             `buildstate os add rhel-8.8 --family rhel --major 8 --minor 8`, or pass --add-missing to add \
             these well-known names"
        );
        assert_eq!(
            hint(&[(CatalogKind::ImageType, &gpu)], false),
            "add it with `buildstate image-type add gpu`"
        );
        assert_eq!(
            hint(&[(CatalogKind::ImageType, &gpu)], true),
            "--add-missing adds only well-known names (the sample catalog's); add it with `buildstate image-type add gpu`"
        );
    }
}
