//! The Prometheus text exposition format (version 0.0.4), written by hand: a handful of
//! families with `# HELP` and `# TYPE` lines, each family's samples together, label
//! values escaped. (prometheus-client writes OpenMetrics text and wants a registry of
//! live metric objects; figures read from the store at scrape time are plain numbers,
//! and this is all the format they need.)

use std::fmt::Write as _;

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A family's type, as its `# TYPE` line says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Summary,
    Histogram,
}

impl Kind {
    const fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Summary => "summary",
            Kind::Histogram => "histogram",
        }
    }
}

/// A whole exposition, one family after the other.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
    /// Names already written: the format allows each family once.
    names: Vec<&'static str>,
}

impl Exposition {
    /// Starts a family. Its samples follow through the returned writer, so a family's
    /// samples cannot be interleaved with another's.
    pub fn family(&mut self, name: &'static str, kind: Kind, help: &str) -> Family<'_> {
        debug_assert!(!self.names.contains(&name), "the family {name} is written twice");
        self.names.push(name);
        let help = help.replace('\\', r"\\").replace('\n', r"\n");
        // Writing to a String cannot fail.
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
        Family { out: &mut self.out, name }
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// The samples of one family.
#[derive(Debug)]
pub struct Family<'e> {
    out: &'e mut String,
    name: &'static str,
}

impl Family<'_> {
    /// A sample of the family itself.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.suffixed("", labels, value)
    }

    /// A sample named with a suffix of the family's name (`_sum`, `_count`, `_bucket`).
    pub fn suffixed(&mut self, suffix: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        let _ = write!(self.out, "{}{suffix}", self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
        self
    }
}

/// A label value with `\`, `"` and line feeds escaped, as the format requires.
fn escape(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return v.into();
    }
    v.replace('\\', r"\\").replace('"', "\\\"").replace('\n', r"\n").into()
}

/// A sample value as the format spells it: `+Inf`, `-Inf`, `NaN`, or a plain decimal
/// (Rust never writes an exponent, which the format would accept too).
pub fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escaping() {
        let mut e = Exposition::default();
        e.family("x_total", Kind::Counter, "what a \\ counts\nhere")
            .sample(&[("a", "q\"uo\\te\nd"), ("b", "plain")], 3.0)
            .sample(&[], 0.25);
        e.family("y_seconds", Kind::Histogram, "h").suffixed("_bucket", &[("le", "+Inf")], 1.0);
        assert_eq!(
            e.finish(),
            "# HELP x_total what a \\\\ counts\\nhere\n# TYPE x_total counter\n\
             x_total{a=\"q\\\"uo\\\\te\\nd\",b=\"plain\"} 3\nx_total 0.25\n\
             # HELP y_seconds h\n# TYPE y_seconds histogram\ny_seconds_bucket{le=\"+Inf\"} 1\n"
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(1_764_763_200.123), "1764763200.123");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(1e21), "1000000000000000000000");
    }
}
