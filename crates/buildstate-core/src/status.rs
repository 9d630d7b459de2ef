/// A word that is not one of the known values of a closed set (status, class, kind).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{word}` is not a known {what} (expected one of: {expected})")]
pub struct ParseWordError {
    pub what: &'static str,
    pub word: String,
    pub expected: String,
}

/// Defines a closed set of lowercase words with a pinned string form.
macro_rules! word_enum {
    ($(#[$m:meta])* $name:ident, $what:literal, { $($(#[$vm:meta])* $v:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize, ::schemars::JsonSchema)]
        #[serde(rename_all = "kebab-case")]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),+];

            /// The storage and wire form. Pinned by a test: changing it breaks stores.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::status::ParseWordError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok($name::$v),)+
                    _ => Err($crate::status::ParseWordError {
                        what: $what,
                        word: $crate::text::shorten(s, 40),
                        expected: [$($s),+].join(", "),
                    }),
                }
            }
        }
    };
}
pub(crate) use word_enum;

word_enum!(
    /// Where a build stands, separate from how far it got (its state code).
    BuildStatus, "build status", {
        /// Created; no milestone attempted yet.
        Pending => "pending",
        /// In progress: an attempt is open, or the next milestone is ready to run.
        Running => "running",
        /// Delivered: milestone 100 completed. Terminal.
        Completed => "completed",
        /// The last attempt at the current milestone failed; the build stays there.
        Failed => "failed",
        /// Stopped by a person. Terminal.
        Cancelled => "cancelled",
    }
);

impl BuildStatus {
    /// Terminal builds change only by an explicit rewind.
    pub const fn is_terminal(self) -> bool {
        matches!(self, BuildStatus::Completed | BuildStatus::Cancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_strings_are_pinned() {
        let words: Vec<&str> = BuildStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(words, ["pending", "running", "completed", "failed", "cancelled"]);
        for s in BuildStatus::ALL {
            assert_eq!(s.as_str().parse::<BuildStatus>(), Ok(*s));
            assert_eq!(serde_json::to_value(s).ok(), Some(serde_json::json!(s.as_str())));
        }
    }

    #[test]
    fn unknown_words_are_rejected_with_the_choices() {
        let err = "bogus".parse::<BuildStatus>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`bogus` is not a known build status (expected one of: pending, running, completed, failed, cancelled)"
        );
    }
}
