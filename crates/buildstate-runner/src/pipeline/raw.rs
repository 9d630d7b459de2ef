//! The serde shape of a pipeline file, before validation.
//!
//! Values are kept as spanned text wherever a check follows, so that every error — from
//! serde or from `resolve` — can point at the exact line and column. Two serde features
//! are avoided on purpose because they drop spans: `flatten`, and untagged or
//! internally tagged enums (so `backoff.kind` is an ordinary field here, checked later).
//! Every struct denies unknown keys; duplicate keys are refused by the YAML reader.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A value with the line and column it came from.
pub(super) type S<T> = Spanned<T>;

/// Environment variables: name → value, in file order.
pub(super) type EnvMap = Entries<S<String>, S<String>>;

/// Platform name → its environment variables.
pub(super) type PlatformEnvMap = Entries<S<String>, S<EnvMap>>;

/// State code → step. A state with nothing after the colon reads as `None`, which
/// `resolve` reports with a better message than "expected a mapping".
pub(super) type StateMap = Entries<S<String>, Option<S<RawStep>>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPipeline {
    pub name: Option<S<String>>,
    pub catalog: Option<S<RawCatalog>>,
    pub matrix: Option<S<RawMatrix>>,
    pub defaults: Option<S<RawDefaults>>,
    pub states: Option<S<StateMap>>,
}

/// `default`, `{insert: [...]}` or a full list of milestones.
#[derive(Debug)]
pub(super) enum RawCatalog {
    Default,
    Insert(Vec<S<RawMilestone>>),
    Full(Vec<S<RawMilestone>>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMilestone {
    pub code: Option<S<String>>,
    pub name: Option<S<String>>,
    pub meaning: Option<S<String>>,
    pub tool: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMatrix {
    pub platform: Option<S<Vec<S<String>>>>,
    pub os: Option<S<Vec<S<String>>>>,
    pub image: Option<S<Vec<S<String>>>>,
    pub exclude: Option<Vec<S<RawCell>>>,
    pub include: Option<Vec<S<RawCell>>>,
}

/// An `include` (all three keys) or `exclude` (any of them) entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCell {
    pub platform: Option<S<String>>,
    pub os: Option<S<String>>,
    pub image: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefaults {
    pub workdir: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub env: Option<S<EnvMap>>,
    pub platform_env: Option<S<PlatformEnvMap>>,
    pub retry: Option<S<RawRetry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    pub run: Option<S<RawRun>>,
    pub script: Option<S<String>>,
    pub packer: Option<S<RawPacker>>,
    pub ansible: Option<S<RawAnsible>>,
    pub workdir: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub env: Option<S<EnvMap>>,
    pub platform_env: Option<S<PlatformEnvMap>>,
    pub retry: Option<S<RawRetry>>,
}

/// `packer: {args, map, keep_on_failure, cleanup}`: `buildstate packer` as the step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPacker {
    pub args: Option<S<Vec<S<String>>>>,
    pub map: Option<S<RawPackerMap>>,
    pub keep_on_failure: Option<S<String>>,
    pub cleanup: Option<S<String>>,
    pub allow_outside: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPackerMap {
    pub provisioners: Option<S<Entries<S<String>, S<String>>>>,
    pub say: Option<Vec<S<RawSay>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSay {
    pub pattern: Option<S<String>>,
    pub milestone: Option<S<String>>,
}

/// `ansible: {playbook, args}`: `buildstate ansible-playbook` as the step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAnsible {
    pub playbook: Option<S<String>>,
    pub args: Option<S<Vec<S<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetry {
    pub max_attempts: Option<S<String>>,
    pub backoff: Option<S<RawBackoff>>,
    pub transient: Option<S<RawTransient>>,
}

/// Every field any backoff kind takes; `resolve` checks which belong to `kind`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBackoff {
    pub kind: Option<S<String>>,
    pub delay: Option<S<String>>,
    pub initial: Option<S<String>>,
    pub max: Option<S<String>>,
    pub factor: Option<S<String>>,
    pub jitter: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTransient {
    pub exit_codes: Option<Vec<S<String>>>,
    pub output_patterns: Option<Vec<S<String>>>,
}

/// `run: "a command line"` or `run: [argv, list]`.
#[derive(Debug)]
pub(super) enum RawRun {
    Line(String),
    Argv(Vec<S<String>>),
}

/// A mapping kept as a list of entries in file order, so that keys keep their spans
/// (`Spanned` has no `Ord`) and `resolve` can report the first bad key.
#[derive(Debug)]
pub(super) struct Entries<K, V>(pub Vec<(K, V)>);

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for Entries<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<K, V>(PhantomData<(K, V)>);

        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<K, V> {
            type Value = Entries<K, V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }

        d.deserialize_map(EntriesVisitor(PhantomData))
    }
}

impl<'de> Deserialize<'de> for RawRun {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RunVisitor;

        impl RunVisitor {
            fn not_text<E: de::Error>(found: impl fmt::Display) -> E {
                E::custom(format!(
                    "`run` is {found} here; expected a command line or an argv list \
                     (quote it, \"{found}\", to run it as a command)"
                ))
            }
        }

        impl<'de> Visitor<'de> for RunVisitor {
            type Value = RawRun;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a command line or an argv list")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawRun, E> {
                Ok(RawRun::Line(v.to_owned()))
            }

            // YAML reads `run: true` as a boolean: refuse rather than guess which
            // spelling was meant.
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawRun, E> {
                Err(Self::not_text(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawRun, E> {
                Err(Self::not_text(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawRun, E> {
                Err(Self::not_text(v))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawRun, E> {
                Err(Self::not_text(v))
            }

            fn visit_unit<E: de::Error>(self) -> Result<RawRun, E> {
                Err(E::custom("`run` is empty; expected a command line or an argv list"))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawRun, A::Error> {
                let mut argv = Vec::new();
                while let Some(arg) = seq.next_element()? {
                    argv.push(arg);
                }
                Ok(RawRun::Argv(argv))
            }
        }

        d.deserialize_any(RunVisitor)
    }
}

impl<'de> Deserialize<'de> for RawCatalog {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CatalogVisitor;

        const FORMS: &str = "`default`, `{insert: [milestones]}` or a list of milestones";

        impl<'de> Visitor<'de> for CatalogVisitor {
            type Value = RawCatalog;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(FORMS)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawCatalog, E> {
                if v == "default" {
                    Ok(RawCatalog::Default)
                } else {
                    Err(E::custom(format!("unknown catalog `{v}`; expected {FORMS}")))
                }
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawCatalog, E> {
                Err(E::custom(format!("unknown catalog `{v}`; expected {FORMS}")))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawCatalog, E> {
                Err(E::custom(format!("unknown catalog `{v}`; expected {FORMS}")))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawCatalog, E> {
                Err(E::custom(format!("unknown catalog `{v}`; expected {FORMS}")))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawCatalog, E> {
                Err(E::custom(format!("unknown catalog `{v}`; expected {FORMS}")))
            }

            fn visit_unit<E: de::Error>(self) -> Result<RawCatalog, E> {
                Ok(RawCatalog::Default)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawCatalog, A::Error> {
                let mut insert = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "insert" {
                        return Err(de::Error::unknown_field(&key, &["insert"]));
                    }
                    insert = Some(map.next_value::<Vec<S<RawMilestone>>>()?);
                }
                insert
                    .map(RawCatalog::Insert)
                    .ok_or_else(|| de::Error::custom(format!("empty catalog; expected {FORMS}")))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawCatalog, A::Error> {
                let mut milestones = Vec::new();
                while let Some(m) = seq.next_element()? {
                    milestones.push(m);
                }
                Ok(RawCatalog::Full(milestones))
            }
        }

        d.deserialize_any(CatalogVisitor)
    }
}
