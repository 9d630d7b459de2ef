use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A progress milestone: a whole number in `0..=100`.
///
/// Whether a code belongs to a particular build is a question for its
/// [`StateCatalog`](crate::StateCatalog); this type only guarantees the range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StateCode(u8);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateCodeError {
    #[error("`{0}` is not a state code: expected a whole number from 0 to 100")]
    NotANumber(String),
    #[error("{0} is out of range: state codes run from 0 to 100")]
    OutOfRange(i64),
}

impl StateCode {
    /// "pipeline triggered, build id allocated": the first milestone of every catalog.
    pub const INITIAL: StateCode = StateCode(0);
    /// "published": the last milestone of every catalog.
    pub const DELIVERED: StateCode = StateCode(100);

    pub fn new(code: i64) -> Result<Self, StateCodeError> {
        u8::try_from(code).ok().filter(|c| *c <= 100).map(StateCode).ok_or(StateCodeError::OutOfRange(code))
    }

    pub const fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for StateCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for StateCode {
    type Err = StateCodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        match trimmed.parse::<i64>() {
            Ok(n) => StateCode::new(n),
            Err(_) => Err(StateCodeError::NotANumber(crate::text::shorten(trimmed, 40))),
        }
    }
}

impl Serialize for StateCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.0)
    }
}

impl<'de> Deserialize<'de> for StateCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        StateCode::new(n).map_err(serde::de::Error::custom)
    }
}

/// A whole number from 0 to 100, as [`Serialize`] writes it.
impl schemars::JsonSchema for StateCode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StateCode".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "integer",
            "minimum": 0,
            "maximum": 100,
            "description": "a milestone: a whole number from 0 to 100",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_whole_range_and_nothing_else() {
        for n in 0..=100 {
            assert_eq!(StateCode::new(n).map(StateCode::get), Ok(n as u8));
        }
        for n in [-5, -1, 101, 250, 256, i64::MAX, i64::MIN] {
            assert_eq!(StateCode::new(n), Err(StateCodeError::OutOfRange(n)));
        }
    }

    #[test]
    fn parses_text_with_clear_errors() {
        assert_eq!("45".parse::<StateCode>().map(StateCode::get), Ok(45));
        assert_eq!(
            "abc".parse::<StateCode>().unwrap_err().to_string(),
            "`abc` is not a state code: expected a whole number from 0 to 100"
        );
        assert_eq!(
            "250".parse::<StateCode>().unwrap_err().to_string(),
            "250 is out of range: state codes run from 0 to 100"
        );
        assert_eq!(
            "-5".parse::<StateCode>().unwrap_err().to_string(),
            "-5 is out of range: state codes run from 0 to 100"
        );
    }

    #[test]
    fn json_rejects_out_of_range() {
        assert!(serde_json::from_str::<StateCode>("250").is_err());
        assert!(serde_json::from_str::<StateCode>("-5").is_err());
        assert_eq!(serde_json::to_string(&StateCode(45)).ok().as_deref(), Some("45"));
    }
}
