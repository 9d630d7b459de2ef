//! What every report produces: named, typed columns and rows of cells, so that one
//! shape serves the CLI's table and CSV, stable JSON, and the HTTP API.

use std::borrow::Cow;

use jiff::Timestamp;
use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};

use super::ReportName;

/// How a column's cells read; the CLI formats by it (durations as `4m 05s`, times in
/// UTC), JSON and CSV keep the raw value (milliseconds, RFC 3339).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CellKind {
    Text,
    Count,
    /// Milliseconds.
    Duration,
    Time,
    /// A percentage, 0–100, one decimal.
    Percent,
    /// Money in the configured rates' currency, two decimals.
    Money,
    Flag,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// The JSON key and CSV header: snake_case, pinned by snapshot tests. Owned only in
    /// a report read back from the HTTP API ([`Report::from_json`]).
    pub key: Cow<'static, str>,
    pub kind: CellKind,
}

/// One value. Numbers that are not whole (percentages, money) are kept as integer
/// hundredths so that every backend gives byte-identical JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    Null,
    Text(String),
    Int(i64),
    /// Hundredths: 1234 is 12.34.
    Cents(i64),
    Time(Timestamp),
    Flag(bool),
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    pub fn count(n: impl TryInto<i64>) -> Cell {
        n.try_into().map_or(Cell::Null, Cell::Int)
    }

    pub fn opt_count(n: Option<u64>) -> Cell {
        n.map_or(Cell::Null, Cell::count)
    }

    pub fn opt_text(s: Option<impl Into<String>>) -> Cell {
        s.map_or(Cell::Null, |s| Cell::Text(s.into()))
    }

    pub fn opt_time(t: Option<Timestamp>) -> Cell {
        t.map_or(Cell::Null, Cell::Time)
    }

    /// `part / whole` as a percentage with one decimal (kept as hundredths), `Null`
    /// when `whole` is 0.
    pub fn percent(part: u64, whole: u64) -> Cell {
        if whole == 0 {
            return Cell::Null;
        }
        // Round half up to one decimal, in integers: 10 * 100 * part / whole tenths.
        let tenths = (part as u128 * 2000 / whole as u128).div_ceil(2);
        Cell::Cents(tenths as i64 * 10)
    }

    /// An amount of money, rounded half up to the cent.
    pub fn money(amount: Option<f64>) -> Cell {
        match amount {
            Some(a) if a.is_finite() => Cell::Cents((a * 100.0).round() as i64),
            _ => Cell::Null,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Cell::Int(n) | Cell::Cents(n) => Some(*n),
            _ => None,
        }
    }

    /// The value as plain text, as CSV holds it.
    pub fn plain(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Text(s) => s.clone(),
            Cell::Int(n) => n.to_string(),
            Cell::Cents(c) => cents(*c),
            Cell::Time(t) => t.to_string(),
            Cell::Flag(b) => b.to_string(),
        }
    }
}

/// `1234` → `12.34`, `-5` → `-0.05`.
pub fn cents(c: i64) -> String {
    let sign = if c < 0 { "-" } else { "" };
    let c = c.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Null => s.serialize_none(),
            Cell::Text(t) => s.serialize_str(t),
            Cell::Int(n) => s.serialize_i64(*n),
            // A JSON number with exactly the decimals shown: 12.5 stays 12.5.
            Cell::Cents(c) => s.serialize_f64(*c as f64 / 100.0),
            Cell::Time(t) => t.serialize(s),
            Cell::Flag(b) => s.serialize_bool(*b),
        }
    }
}

/// A computed report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub name: ReportName,
    /// The store's clock when the report was computed: what "elapsed" and ETAs are from.
    pub generated_at: Timestamp,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    /// Figures about the whole report (totals), by key.
    pub summary: Vec<(Cow<'static, str>, Cell)>,
    /// What a reader should know to read the figures right (a platform without a rate).
    pub notes: Vec<String>,
}

impl Report {
    pub(crate) fn new(
        name: ReportName,
        generated_at: Timestamp,
        columns: &[(&'static str, CellKind)],
    ) -> Self {
        Report {
            name,
            generated_at,
            columns: columns.iter().map(|&(key, kind)| Column { key: Cow::Borrowed(key), kind }).collect(),
            rows: Vec::new(),
            summary: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds a figure about the whole report.
    pub(crate) fn sum(&mut self, key: &'static str, cell: Cell) {
        self.summary.push((Cow::Borrowed(key), cell));
    }

    pub(crate) fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(row.len(), self.columns.len(), "{}: a row of the wrong width", self.name);
        self.rows.push(row);
    }

    /// The cell of `key` in `row`.
    pub fn get<'r>(&self, row: &'r [Cell], key: &str) -> Option<&'r Cell> {
        self.columns.iter().position(|c| c.key == key).and_then(|i| row.get(i))
    }

    /// The rows as CSV: a header of column keys, then one line per row (RFC 4180
    /// quoting). Summary and notes are not part of it: a spreadsheet wants a rectangle.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let header: Vec<String> = self.columns.iter().map(|c| csv_field(&c.key)).collect();
        out.push_str(&header.join(","));
        out.push_str("\r\n");
        for row in &self.rows {
            let fields: Vec<String> = row
                .iter()
                .zip(&self.columns)
                .map(|(c, col)| match (c, col.kind) {
                    // One decimal, as percentages are rounded.
                    (Cell::Cents(v), CellKind::Percent) => {
                        let text = cents(*v);
                        text[..text.len() - 1].to_owned()
                    }
                    _ => csv_field(&c.plain()),
                })
                .collect();
            out.push_str(&fields.join(","));
            out.push_str("\r\n");
        }
        out
    }
}

/// A CSV field, quoted when it holds a comma, quote or line break. A field that a
/// spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) gets a leading `'`,
/// since failure messages come from build output.
fn csv_field(s: &str) -> String {
    let s = match s.chars().next() {
        Some('=' | '+' | '@' | '\t' | '\r') => format!("'{s}"),
        Some('-') if s.parse::<f64>().is_err() => format!("'{s}"),
        _ => s.to_owned(),
    };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

/// `{"report", "generated_at", "columns", "rows": [{key: value}], "summary", "notes"}`.
impl Serialize for Report {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Row<'a>(&'a [Column], &'a [Cell]);
        impl Serialize for Row<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (c, v) in self.0.iter().zip(self.1) {
                    m.serialize_entry(&*c.key, v)?;
                }
                m.end()
            }
        }
        struct Summary<'a>(&'a [(Cow<'static, str>, Cell)]);
        impl Serialize for Summary<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    m.serialize_entry(&**k, v)?;
                }
                m.end()
            }
        }
        #[derive(Serialize)]
        struct ColumnView<'a> {
            key: &'a str,
            kind: CellKind,
        }
        let columns: Vec<ColumnView<'_>> =
            self.columns.iter().map(|c| ColumnView { key: &c.key, kind: c.kind }).collect();
        let rows: Vec<Row<'_>> = self.rows.iter().map(|r| Row(&self.columns, r)).collect();
        let mut st = s.serialize_struct("Report", 6)?;
        st.serialize_field("report", self.name.as_str())?;
        st.serialize_field("generated_at", &self.generated_at)?;
        st.serialize_field("columns", &columns)?;
        st.serialize_field("rows", &rows)?;
        st.serialize_field("summary", &Summary(&self.summary))?;
        st.serialize_field("notes", &self.notes)?;
        st.end()
    }
}

/// The shape [`Serialize`] writes: rows and the summary are objects keyed by column
/// (and figure) keys, which differ per report, so their values are any cell.
impl schemars::JsonSchema for Report {
    fn schema_name() -> Cow<'static, str> {
        "Report".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let kind = generator.subschema_for::<CellKind>();
        let names: Vec<&str> = ReportName::ALL.iter().map(|n| n.as_str()).collect();
        let cell = schemars::json_schema!({"type": ["string", "number", "boolean", "null"]});
        schemars::json_schema!({
            "type": "object",
            "required": ["report", "generated_at", "columns", "rows", "summary", "notes"],
            "additionalProperties": false,
            "properties": {
                "report": {"type": "string", "enum": names},
                "generated_at": {"type": "string", "format": "date-time"},
                "columns": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["key", "kind"],
                        "additionalProperties": false,
                        "properties": {"key": {"type": "string"}, "kind": kind},
                    },
                },
                "rows": {"type": "array", "items": {"type": "object", "additionalProperties": cell}},
                "summary": {"type": "object", "additionalProperties": cell},
                "notes": {"type": "array", "items": {"type": "string"}},
            },
        })
    }
}

impl Report {
    /// The report back from its JSON (what the HTTP API answers), for a client that
    /// shows it as it shows a report of its own store: the inverse of `Serialize`. A
    /// cell is read by its column's kind; a summary figure, which has none, is a whole
    /// number or hundredths by how the number is written. The summary keeps the order
    /// it was written in, which is the order the CLI prints it in.
    pub fn from_json(text: &[u8]) -> Result<Report, String> {
        #[derive(serde::Deserialize)]
        struct ColumnView {
            key: String,
            kind: CellKind,
        }
        #[derive(serde::Deserialize)]
        struct Wire {
            report: String,
            generated_at: Timestamp,
            columns: Vec<ColumnView>,
            rows: Vec<serde_json::Map<String, serde_json::Value>>,
            summary: Ordered,
            notes: Vec<String>,
        }
        let w: Wire = serde_json::from_slice(text).map_err(|e| format!("not a report: {e}"))?;
        let name: ReportName = w.report.parse()?;
        let columns: Vec<Column> =
            w.columns.into_iter().map(|c| Column { key: Cow::Owned(c.key), kind: c.kind }).collect();
        let mut rows = Vec::with_capacity(w.rows.len());
        for row in &w.rows {
            let cells = columns
                .iter()
                .map(|c| cell(row.get(&*c.key).unwrap_or(&serde_json::Value::Null), Some(c.kind)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("a row: {e}"))?;
            rows.push(cells);
        }
        let mut summary = Vec::with_capacity(w.summary.0.len());
        for (k, value) in w.summary.0 {
            let c = cell(&value, None).map_err(|e| format!("summary {k}: {e}"))?;
            summary.push((Cow::Owned(k), c));
        }
        Ok(Report { name, generated_at: w.generated_at, columns, rows, summary, notes: w.notes })
    }
}

/// A JSON object's entries in the order they were written.
struct Ordered(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Ordered(entries))
            }
        }
        d.deserialize_map(Visitor)
    }
}

/// One cell from JSON, by its column's kind (`None`: a summary figure).
fn cell(v: &serde_json::Value, kind: Option<CellKind>) -> Result<Cell, String> {
    use serde_json::Value;
    let hundredths = |n: &serde_json::Number| {
        n.as_f64().map(|f| Cell::Cents((f * 100.0).round() as i64)).ok_or_else(|| format!("{n} is no number"))
    };
    Ok(match (v, kind) {
        (Value::Null, _) => Cell::Null,
        (Value::Bool(b), _) => Cell::Flag(*b),
        (Value::String(t), Some(CellKind::Time)) => {
            Cell::Time(t.parse().map_err(|e| format!("`{t}` is not a time: {e}"))?)
        }
        (Value::String(t), _) => Cell::Text(t.clone()),
        (Value::Number(n), Some(CellKind::Percent | CellKind::Money)) => hundredths(n)?,
        (Value::Number(n), None) if n.is_f64() => hundredths(n)?,
        (Value::Number(n), _) => Cell::Int(n.as_i64().ok_or_else(|| format!("{n} is not a whole number"))?),
        (other, _) => return Err(format!("a cell cannot be {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_half_up_to_one_decimal() {
        assert_eq!(Cell::percent(1, 3), Cell::Cents(3330));
        assert_eq!(Cell::percent(2, 3), Cell::Cents(6670));
        assert_eq!(Cell::percent(1, 8), Cell::Cents(1250));
        assert_eq!(Cell::percent(0, 0), Cell::Null);
        assert_eq!(Cell::percent(5, 5), Cell::Cents(10_000));
    }

    /// What a client of the HTTP API shows is what the server computed, cell for cell
    /// and with the summary in its order, or it would print a different table.
    #[test]
    fn a_report_reads_back_from_its_json() {
        let at: Timestamp = "2026-02-12T10:00:00Z".parse().unwrap();
        let mut r = Report::new(
            ReportName::Running,
            at,
            &[
                ("build", CellKind::Text),
                ("attempts", CellKind::Count),
                ("elapsed", CellKind::Duration),
                ("started_at", CellKind::Time),
                ("success_rate", CellKind::Percent),
                ("cost", CellKind::Money),
                ("resumed", CellKind::Flag),
            ],
        );
        r.push(vec![
            Cell::text("aws-rhel-9-base-#3"),
            Cell::Int(2),
            Cell::Int(245_000),
            Cell::Time(at),
            Cell::Cents(10_000),
            Cell::Cents(1234),
            Cell::Flag(true),
        ]);
        r.push(vec![Cell::Null; 7]);
        r.sum("zeta", Cell::Int(3));
        r.sum("alpha", Cell::Cents(1000));
        r.sum("mid", Cell::Null);
        r.notes.push("gcp has no rate".into());
        let json = serde_json::to_vec(&r).unwrap();
        assert_eq!(Report::from_json(&json).unwrap(), r);
        assert!(Report::from_json(b"{\"report\": \"nope\"}").is_err());
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("-12.5"), "-12.5");
        assert_eq!(csv_field("-rf"), "'-rf");
        assert_eq!(cents(-5), "-0.05");
        assert_eq!(cents(1234), "12.34");
    }
}
