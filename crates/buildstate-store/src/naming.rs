//! Small pieces of naming logic every backend needs the same way: prefix ranges for
//! build references, the sequence part of build numbers, what an OS name says, and the
//! catalog items an imported build implies.

use buildstate_core::{Build, CatalogItem, ImageType, OsVersion, Platform};

/// The least string above every string that starts with `prefix`, or `None` when
/// `prefix` is empty or not printable ASCII — ids and numbers are printable ASCII, so
/// such a prefix matches nothing anyway. `[prefix, upper)` is then a range query that,
/// unlike LIKE, gives `_`, `%` and `.` no special meaning.
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let mut bytes = prefix.as_bytes().to_vec();
    // Printable ASCII ends at 0x7E, so the incremented byte is still ASCII.
    let last = bytes.pop()?;
    bytes.push(last + 1);
    String::from_utf8(bytes).ok()
}

/// The sequence number of `number` in the day `stem` names, if it has one: the rest
/// after the stem is all digits (`…-20260212-007` → 7; `…-20260212-hotfix` → none).
pub fn sequence_of(number: &str, stem: &str) -> Option<u32> {
    let rest = number.strip_prefix(stem)?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

/// `rhel-8.10` → (`rhel`, 8, Some(10)); `sles-15` → (`sles`, 15, None); a name without
/// a version → (the name, 0, None). Used when an import registers an OS version the
/// store does not know yet.
pub fn os_parts(name: &str) -> (String, u32, Option<u32>) {
    let (family, version) = name.split_once('-').unwrap_or((name, ""));
    let mut numbers = version.split('.');
    let major = numbers.next().and_then(|m| m.parse().ok());
    let minor = major.and(numbers.next()).and_then(|m| m.parse().ok());
    (family.to_owned(), major.unwrap_or(0), minor)
}

/// The catalog items an imported build names, for a store that lacks them: what the
/// document tells (the platform's provider, the OS name's family and version) and
/// neutral defaults for the rest.
pub fn implied_catalog_items(build: &Build, provider: Option<&str>) -> [CatalogItem; 3] {
    let platform = CatalogItem::Platform(Platform {
        name: build.platform.clone(),
        display_name: build.platform.to_string(),
        provider: provider.unwrap_or("unknown").to_owned(),
        region: None,
    });
    let (family, major, minor) = os_parts(build.os.as_str());
    let os = CatalogItem::Os(OsVersion {
        name: build.os.clone(),
        display_name: build.os.to_string(),
        family,
        major,
        minor,
    });
    let image_type = CatalogItem::ImageType(ImageType {
        name: build.image_type.clone(),
        display_name: build.image_type.to_string(),
        description: String::new(),
    });
    [platform, os, image_type]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ranges() {
        assert_eq!(prefix_upper_bound("rhel-9.6_"), Some("rhel-9.6`".to_owned()));
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("é"), None);
    }

    #[test]
    fn sequences_and_os_names() {
        assert_eq!(sequence_of("a-20260212-007", "a-20260212-"), Some(7));
        assert_eq!(sequence_of("a-20260212-hotfix", "a-20260212-"), None);
        assert_eq!(os_parts("rhel-8.10"), ("rhel".to_owned(), 8, Some(10)));
        assert_eq!(os_parts("sles-15"), ("sles".to_owned(), 15, None));
        assert_eq!(os_parts("ubuntu-24.04"), ("ubuntu".to_owned(), 24, Some(4)));
        assert_eq!(os_parts("debian-trixie"), ("debian".to_owned(), 0, None));
        assert_eq!(os_parts("custom"), ("custom".to_owned(), 0, None));
    }
}
