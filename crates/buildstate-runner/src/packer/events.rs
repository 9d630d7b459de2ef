//! Packer's `-machine-readable` stream, one line at a time:
//! `timestamp,target,type,data…`, with commas inside data written `%!(PACKER_COMMA)` and
//! newlines inside `ui` text written as the two characters `\n`.
//!
//! The parser is total: a line that is not machine-readable (a plugin writing to stdout,
//! a wrapper's banner) is [`Line::Plain`], never an error, because a stray line must not
//! stop a build from being tracked. Lines are cut at [`MAX_LINE_BYTES`] by
//! [`LineSplitter`] so that one endless line cannot grow memory.

/// A longer text is cut here, after unescaping (on a character boundary), and the cut
/// marked `… [cut N bytes]` ([`cut_text`]): Packer's own lines are far shorter; only a
/// runaway script prints this.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// A raw line is cut here by [`LineSplitter`] (the rest dropped up to the next newline,
/// and the cut marked): escapes make a raw line longer than its text, so this is
/// larger than [`MAX_LINE_BYTES`].
pub const MAX_RAW_LINE_BYTES: usize = 4 * MAX_LINE_BYTES;

/// `text` cut to [`MAX_LINE_BYTES`] with the cut marked, or as is.
pub fn cut_text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= MAX_LINE_BYTES {
        return text.into();
    }
    let mut end = MAX_LINE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [cut {} bytes]", &text[..end], text.len() - end).into()
}

const COMMA: &str = "%!(PACKER_COMMA)";

/// One line of Packer's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// A machine-readable record.
    Record(Record),
    /// Anything else, passed on as is.
    Plain(String),
}

/// `timestamp,target,type,data…`; `target` is the build name (`null.x`) or empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub timestamp: i64,
    pub target: String,
    pub event: Event,
}

/// How Packer would have shown a `ui` line without `-machine-readable`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UiLevel {
    /// `==> build: …` progress (stdout).
    Say,
    /// Indented output of a step (stdout).
    Message,
    /// An error line (stderr); also a provisioner's stderr.
    Error,
}

/// The record types buildstate acts on; the others are kept as [`Event::Other`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `ui,say|message|error,TEXT` (text unescaped).
    Ui { level: UiLevel, text: String },
    /// `artifact-count,N`.
    ArtifactCount(u32),
    /// `artifact,INDEX,KEY,VALUE…` (`id`, `builder-id`, `string`, `files-count`,
    /// `file,N,NAME`, `end`).
    Artifact { index: u32, key: String, values: Vec<String> },
    /// `error-count,N`: how many builds failed.
    ErrorCount(u32),
    /// `TARGET,error,MESSAGE`: build TARGET failed with MESSAGE.
    Error(String),
    /// Any other type, with its data fields.
    Other { kind: String, data: Vec<String> },
}

/// Undoes Packer's escapes: `%!(PACKER_COMMA)` → `,` and the two characters `\n` → a
/// newline (and `\r` → carriage return).
pub fn unescape(field: &str) -> String {
    field.replace(COMMA, ",").replace("\\n", "\n").replace("\\r", "\r")
}

/// Parses one line (without its newline).
pub fn parse_line(raw: &str) -> Line {
    let raw = raw.strip_suffix('\r').unwrap_or(raw);
    let plain = || Line::Plain(raw.to_owned());
    let mut fields = raw.split(',');
    let (Some(ts), Some(target), Some(kind)) = (fields.next(), fields.next(), fields.next()) else {
        return plain();
    };
    let Ok(timestamp) = ts.parse::<i64>() else { return plain() };
    if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return plain();
    }
    let data: Vec<String> = fields.map(unescape).collect();
    let event = match (kind, data.as_slice()) {
        ("ui", [level, text @ ..]) => {
            let level = match level.as_str() {
                "say" => UiLevel::Say,
                "message" => UiLevel::Message,
                "error" => UiLevel::Error,
                _ => return Line::Record(other(timestamp, target, kind, data)),
            };
            // A comma Packer forgot to escape is still text.
            Event::Ui { level, text: text.join(",") }
        }
        ("artifact-count", [n]) => match n.parse() {
            Ok(n) => Event::ArtifactCount(n),
            Err(_) => return Line::Record(other(timestamp, target, kind, data)),
        },
        ("error-count", [n]) => match n.parse() {
            Ok(n) => Event::ErrorCount(n),
            Err(_) => return Line::Record(other(timestamp, target, kind, data)),
        },
        ("error", message) if !message.is_empty() => Event::Error(message.join(",")),
        ("artifact", [index, key, values @ ..]) => match index.parse() {
            Ok(index) => Event::Artifact { index, key: key.clone(), values: values.to_vec() },
            Err(_) => return Line::Record(other(timestamp, target, kind, data)),
        },
        _ => return Line::Record(other(timestamp, target, kind, data)),
    };
    Line::Record(Record { timestamp, target: unescape(target), event })
}

fn other(timestamp: i64, target: &str, kind: &str, data: Vec<String>) -> Record {
    Record { timestamp, target: unescape(target), event: Event::Other { kind: kind.to_owned(), data } }
}

impl Record {
    /// The text Packer prints for this record without `-machine-readable`, and whether
    /// it goes to stderr; `None` for records that only exist machine-readably
    /// (artifacts and counts, which Packer also says in `ui` lines).
    pub fn human(&self) -> Option<(&str, bool)> {
        match &self.event {
            Event::Ui { level, text } => Some((text.as_str(), *level == UiLevel::Error)),
            _ => None,
        }
    }
}

/// Cuts a byte stream into lines of at most [`MAX_LINE_BYTES`] bytes (lossy UTF-8).
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
    /// The current line was cut: drop bytes until its newline.
    skipping: bool,
    /// Bytes dropped of the current line.
    dropped: usize,
}

impl LineSplitter {
    /// Feeds a chunk; returns the lines it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        let mut rest = chunk;
        while !rest.is_empty() {
            match rest.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    self.take(&rest[..i]);
                    lines.push(self.flush_line());
                    self.skipping = false;
                    rest = &rest[i + 1..];
                }
                None => {
                    self.take(rest);
                    rest = &[];
                }
            }
        }
        lines
    }

    /// The last line when the stream ends without a newline.
    pub fn finish(&mut self) -> Option<String> {
        (!self.buf.is_empty()).then(|| self.flush_line())
    }

    fn take(&mut self, bytes: &[u8]) {
        if self.skipping {
            self.dropped += bytes.len();
            return;
        }
        let room = MAX_RAW_LINE_BYTES - self.buf.len();
        if bytes.len() > room {
            self.buf.extend_from_slice(&bytes[..room]);
            self.dropped += bytes.len() - room;
            self.skipping = true;
        } else {
            self.buf.extend_from_slice(bytes);
        }
    }

    fn flush_line(&mut self) -> String {
        let mut line = String::from_utf8_lossy(&self.buf).into_owned();
        if self.dropped > 0 {
            line.push_str(&format!("… [cut {} bytes]", self.dropped));
        }
        self.buf.clear();
        self.dropped = 0;
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(raw: &str) -> Record {
        match parse_line(raw) {
            Line::Record(r) => r,
            Line::Plain(p) => panic!("not a record: {p}"),
        }
    }

    #[test]
    fn ui_lines_are_unescaped() {
        let r = record("1796316046,,ui,message,    null.x: one%!(PACKER_COMMA) two");
        assert_eq!(r.timestamp, 1796316046);
        assert_eq!(r.target, "");
        assert_eq!(r.event, Event::Ui { level: UiLevel::Message, text: "    null.x: one, two".into() });
        let r = record("1,,ui,say,\\n==> Wait completed after 25 milliseconds");
        assert_eq!(r.human(), Some(("\n==> Wait completed after 25 milliseconds", false)));
        let r = record("1,,ui,error,==> null.x: err");
        assert_eq!(r.human(), Some(("==> null.x: err", true)));
        // An unescaped comma in the text stays text.
        let r = record("1,,ui,say,a,b");
        assert_eq!(r.event, Event::Ui { level: UiLevel::Say, text: "a,b".into() });
    }

    #[test]
    fn artifacts_errors_and_counts() {
        assert_eq!(
            record("1,null.x,artifact,0,id,us-east-1:ami-1%!(PACKER_COMMA)us-west-2:ami-2").event,
            Event::Artifact {
                index: 0,
                key: "id".into(),
                values: vec!["us-east-1:ami-1,us-west-2:ami-2".into()]
            }
        );
        assert_eq!(
            record("1,null.x,artifact,1,file,0,disk.img").event,
            Event::Artifact { index: 1, key: "file".into(), values: vec!["0".into(), "disk.img".into()] }
        );
        assert_eq!(record("1,,error-count,1").event, Event::ErrorCount(1));
        assert_eq!(record("1,null.x,artifact-count,2").event, Event::ArtifactCount(2));
        let r = record("1,null.x,error,Script exited with non-zero exit status: 3");
        assert_eq!(r.target, "null.x");
        assert_eq!(r.event, Event::Error("Script exited with non-zero exit status: 3".into()));
        assert!(matches!(record("1,,version,1.6.6").event, Event::Other { .. }));
        assert!(matches!(record("1,,ui,shout,x").event, Event::Other { .. }));
    }

    #[test]
    fn junk_is_plain() {
        for junk in ["", "hello", "Error: something, went wrong", "abc,,ui,say,x", "1,,", "1,,ui say,x", "1"]
        {
            assert_eq!(parse_line(junk), Line::Plain(junk.to_owned()), "{junk:?}");
        }
        assert!(matches!(parse_line("1,,ui,say,ok\r"), Line::Record(_)));
    }

    #[test]
    fn splitter_joins_chunks_and_bounds_lines() {
        let mut s = LineSplitter::default();
        assert!(s.push(b"1,,ui,say,he").is_empty());
        assert_eq!(s.push(b"llo\n2,,ui,say,x\n3"), vec!["1,,ui,say,hello", "2,,ui,say,x"]);
        assert_eq!(s.finish().as_deref(), Some("3"));
        assert_eq!(s.finish(), None);

        let long = vec![b'a'; MAX_RAW_LINE_BYTES * 2 + 10];
        let mut lines = s.push(&long);
        lines.extend(s.push(b"aaa\nnext\n"));
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with(&"a".repeat(MAX_RAW_LINE_BYTES)));
        assert!(
            lines[0].ends_with(&format!("a… [cut {} bytes]", MAX_RAW_LINE_BYTES + 13)),
            "{}",
            &lines[0][MAX_RAW_LINE_BYTES - 5..]
        );
        assert_eq!(lines[1], "next");
    }

    #[test]
    fn texts_are_cut_after_unescaping() {
        // Escapes count once unescaped: this text fits though its raw line does not.
        let escaped = COMMA.repeat(MAX_LINE_BYTES / 2);
        let r = record(&format!("1,,ui,say,{escaped}"));
        let Some((text, _)) = r.human() else { panic!("a ui line") };
        assert_eq!(cut_text(text).len(), MAX_LINE_BYTES / 2);
        let long = "é".repeat(MAX_LINE_BYTES);
        let cut = cut_text(&long);
        assert!(cut.ends_with(&format!("… [cut {} bytes]", MAX_LINE_BYTES)), "{}", &cut[cut.len() - 30..]);
    }
}
