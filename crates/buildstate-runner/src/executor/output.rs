//! The output side of a step: pumps that drain stdout and stderr concurrently, the log
//! file, the bounded tail, and passthrough to our own stdout/stderr.
//!
//! Memory stays bounded whatever the step prints: two fixed read buffers and a tail of at
//! most [`TAIL_MAX_BYTES`] bytes. Everything else goes straight to the log file.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// At most this many lines are kept in the tail.
pub const TAIL_MAX_LINES: usize = 40;
/// At most this many bytes are kept in the tail (of UTF-8, after lossy conversion).
pub const TAIL_MAX_BYTES: usize = 8 * 1024;

/// Size of each read buffer: large enough that a chatty step costs few wake-ups.
const READ_BUF: usize = 64 * 1024;

/// The last bytes of the combined output, as a ring buffer of at most
/// [`TAIL_MAX_BYTES`] raw bytes; lines are cut only when rendering.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    bytes: VecDeque<u8>,
}

impl Tail {
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        if chunk.len() >= TAIL_MAX_BYTES {
            self.bytes.clear();
            self.bytes.extend(&chunk[chunk.len() - TAIL_MAX_BYTES..]);
            return;
        }
        let overflow = (self.bytes.len() + chunk.len()).saturating_sub(TAIL_MAX_BYTES);
        self.bytes.drain(..overflow);
        self.bytes.extend(chunk);
    }

    /// The last [`TAIL_MAX_LINES`] lines, at most [`TAIL_MAX_BYTES`] bytes, as lossy UTF-8.
    ///
    /// A line is text up to and including `\n`; a final line without `\n` counts too.
    pub(crate) fn render(&self) -> String {
        let (front, back) = self.bytes.as_slices();
        let mut raw = Vec::with_capacity(self.bytes.len());
        raw.extend_from_slice(front);
        raw.extend_from_slice(back);

        // The ring may start in the middle of a multi-byte character: drop its
        // continuation bytes rather than render them as replacement characters.
        let skip = raw.iter().take(3).take_while(|b| (**b & 0b1100_0000) == 0b1000_0000).count();
        let text = String::from_utf8_lossy(&raw[skip..]);

        // Replacement characters take 3 bytes for each invalid byte, so the text can be
        // longer than the ring: cut it again, on a character boundary.
        let mut start = text.len().saturating_sub(TAIL_MAX_BYTES);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        let text = &text[start..];

        // Keep the last TAIL_MAX_LINES lines; a trailing '\n' ends the last line rather
        // than starting an empty one.
        let body = text.strip_suffix('\n').unwrap_or(text);
        let cut = body.rmatch_indices('\n').nth(TAIL_MAX_LINES - 1).map_or(0, |(i, _)| i + 1);
        text[cut..].to_owned()
    }
}

/// Where the raw output goes: the log file (append, arrival order) and the tail.
#[derive(Debug)]
pub(crate) struct Recorder<L> {
    log: L,
    log_path: PathBuf,
    /// The first log write error; later chunks are still kept in the tail, and the
    /// pipes are still drained so that the step never blocks on a full pipe.
    log_error: Option<String>,
    tail: Tail,
}

impl<L: Write> Recorder<L> {
    pub(crate) fn new(log: L, log_path: &Path) -> Self {
        Recorder { log, log_path: log_path.to_owned(), log_error: None, tail: Tail::default() }
    }

    pub(crate) fn record(&mut self, chunk: &[u8]) {
        self.tail.push(chunk);
        if self.log_error.is_none()
            && let Err(e) = self.log.write_all(chunk)
        {
            self.fail_log(&e);
        }
    }

    /// A note of our own (not output of the step), e.g. why it could not start.
    pub(crate) fn note(&mut self, message: &str) {
        self.record(format!("buildstate: {message}\n").as_bytes());
    }

    fn fail_log(&mut self, e: &io::Error) {
        let message = format!(
            "writing the log {} failed: {e}; the rest of the output is not in the log",
            self.log_path.display()
        );
        tracing::warn!("{message}");
        self.log_error = Some(message);
    }

    /// Flushes the log and renders the tail. A log failure is appended to the tail so
    /// that whoever records the attempt sees it.
    pub(crate) fn finish(mut self) -> String {
        if self.log_error.is_none()
            && let Err(e) = self.log.flush()
        {
            self.fail_log(&e);
        }
        let mut tail = self.tail.render();
        if let Some(message) = self.log_error {
            if !tail.is_empty() && !tail.ends_with('\n') {
                tail.push('\n');
            }
            tail.push_str("buildstate: ");
            tail.push_str(&message);
            tail.push('\n');
        }
        tail
    }
}

/// Passthrough sinks (for `buildstate exec`): `None` for a stream that is captured only,
/// or whose sink failed (our own stdout closed, say) — logging goes on regardless.
#[derive(Debug)]
pub(crate) struct Forward<O, E> {
    pub(crate) stdout: Option<O>,
    pub(crate) stderr: Option<E>,
}

impl<O, E> Forward<O, E> {
    pub(crate) fn none() -> Self {
        Forward { stdout: None, stderr: None }
    }
}

/// Writes one chunk through and flushes it, so the user sees output as it comes.
/// A failing sink is dropped: the step must keep running and being logged.
async fn forward<W: AsyncWrite + Unpin>(sink: &mut Option<W>, chunk: &[u8], name: &str) {
    let Some(w) = sink.as_mut() else { return };
    let result = async {
        w.write_all(chunk).await?;
        w.flush().await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!("passing the step's output through to our {name} failed: {e}; it is still logged");
        *sink = None;
    }
}

/// Drains both streams until each reaches end of file (or fails), recording every
/// chunk in arrival order and forwarding it.
///
/// Cancel safe: `AsyncReadExt::read` loses no data when cancelled, and a chunk that was
/// read is recorded before the next await. The caller drops this future when the pipes
/// are held open by a process outside the step's process group.
pub(crate) async fn pump<R1, R2, L, O, E>(
    stdout: Option<R1>,
    stderr: Option<R2>,
    recorder: &mut Recorder<L>,
    forward_to: &mut Forward<O, E>,
) where
    R1: AsyncRead + Unpin,
    R2: AsyncRead + Unpin,
    L: Write,
    O: AsyncWrite + Unpin,
    E: AsyncWrite + Unpin,
{
    let mut out = stdout;
    let mut err = stderr;
    let mut out_buf = vec![0u8; READ_BUF];
    let mut err_buf = vec![0u8; READ_BUF];
    loop {
        tokio::select! {
            r = read_some(&mut out, &mut out_buf), if out.is_some() => match r {
                Some(n) => {
                    let chunk = &out_buf[..n];
                    recorder.record(chunk);
                    forward(&mut forward_to.stdout, chunk, "stdout").await;
                }
                None => out = None,
            },
            r = read_some(&mut err, &mut err_buf), if err.is_some() => match r {
                Some(n) => {
                    let chunk = &err_buf[..n];
                    recorder.record(chunk);
                    forward(&mut forward_to.stderr, chunk, "stderr").await;
                }
                None => err = None,
            },
            else => break,
        }
    }
}

/// One read: `Some(n)` with `n > 0` bytes, or `None` at end of file or on an error
/// (a broken pipe cannot recover, so an error ends the stream).
async fn read_some<R: AsyncRead + Unpin>(source: &mut Option<R>, buf: &mut [u8]) -> Option<usize> {
    let r = source.as_mut()?;
    loop {
        match r.read(buf).await {
            Ok(0) => return None,
            Ok(n) => return Some(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!("reading the step's output failed: {e}");
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(n: usize) -> String {
        (1..=n).map(|i| format!("line {i}\n")).collect()
    }

    #[test]
    fn tail_keeps_the_last_40_lines() {
        let mut tail = Tail::default();
        for chunk in numbered(10_000).as_bytes().chunks(777) {
            tail.push(chunk);
        }
        let text = tail.render();
        assert_eq!(text, (9_961..=10_000).map(|i| format!("line {i}\n")).collect::<String>());
    }

    #[test]
    fn tail_counts_an_unterminated_last_line() {
        let mut tail = Tail::default();
        tail.push(numbered(50).as_bytes());
        tail.push(b"partial");
        let text = tail.render();
        assert!(text.starts_with("line 12\n"), "{text:?}");
        assert!(text.ends_with("line 50\npartial"), "{text:?}");
        assert_eq!(text.lines().count(), TAIL_MAX_LINES);
    }

    #[test]
    fn tail_of_short_output_is_all_of_it() {
        let mut tail = Tail::default();
        assert_eq!(tail.render(), "");
        tail.push(b"a\n\nb\n");
        assert_eq!(tail.render(), "a\n\nb\n");
    }

    #[test]
    fn tail_is_bounded_in_bytes() {
        let mut tail = Tail::default();
        let long_line = vec![b'x'; 100_000];
        for _ in 0..20 {
            tail.push(&long_line);
            assert!(tail.bytes.len() <= TAIL_MAX_BYTES);
        }
        tail.push(b"\nend\n");
        assert!(tail.bytes.len() <= TAIL_MAX_BYTES);
        let text = tail.render();
        assert!(text.len() <= TAIL_MAX_BYTES);
        assert!(text.ends_with("xx\nend\n"));
    }

    #[test]
    fn tail_is_lossy_utf8_and_bounded_after_replacement() {
        let mut tail = Tail::default();
        // Invalid bytes each become a 3-byte replacement character.
        tail.push(&vec![0xFF; TAIL_MAX_BYTES]);
        let text = tail.render();
        assert!(text.len() <= TAIL_MAX_BYTES);
        assert!(text.chars().all(|c| c == char::REPLACEMENT_CHARACTER));

        // A multi-byte character cut by the ring is dropped, not mangled.
        let mut tail = Tail::default();
        let mut bytes = "é".repeat(TAIL_MAX_BYTES / 2).into_bytes();
        bytes.push(b'!');
        tail.push(&bytes);
        let text = tail.render();
        assert!(!text.contains(char::REPLACEMENT_CHARACTER));
        assert!(text.ends_with("éé!"));
    }

    #[tokio::test]
    async fn pump_logs_everything_and_forwards_each_stream_to_its_sink() {
        let out_src: &[u8] = b"out 1\nout 2\n\xFF binary \x00\n";
        let err_src: &[u8] = b"err 1\n";
        let mut log = Vec::new();
        let mut recorder = Recorder::new(&mut log, Path::new("mem.log"));
        let mut fwd = Forward { stdout: Some(Vec::<u8>::new()), stderr: Some(Vec::<u8>::new()) };
        pump(Some(out_src), Some(err_src), &mut recorder, &mut fwd).await;
        let tail = recorder.finish();

        assert_eq!(fwd.stdout.as_deref(), Some(out_src), "stdout byte for byte");
        assert_eq!(fwd.stderr.as_deref(), Some(err_src), "stderr byte for byte");
        assert_eq!(log.len(), out_src.len() + err_src.len());
        // Arrival order between two in-memory sources is arbitrary; within a stream
        // it is kept.
        let log = String::from_utf8_lossy(&log);
        let pos = |s: &str| log.find(s).unwrap_or(usize::MAX);
        assert!(pos("out 1") < pos("out 2"));
        assert!(pos("err 1") < log.len());
        assert!(tail.contains("err 1") && tail.contains("out 2"));
    }

    #[tokio::test]
    async fn pump_with_a_missing_stream_and_no_forwarding() {
        let mut log = Vec::new();
        let mut recorder = Recorder::new(&mut log, Path::new("mem.log"));
        let mut fwd: Forward<Vec<u8>, Vec<u8>> = Forward::none();
        pump(Some(&b"only\n"[..]), None::<&[u8]>, &mut recorder, &mut fwd).await;
        assert_eq!(recorder.finish(), "only\n");
        assert_eq!(log, b"only\n");
    }

    /// A sink that always fails, like our stdout after the reader went away.
    struct Broken;

    impl AsyncWrite for Broken {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            _: &[u8],
        ) -> std::task::Poll<io::Result<usize>> {
            std::task::Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_broken_passthrough_sink_does_not_stop_logging() {
        let mut log = Vec::new();
        let mut recorder = Recorder::new(&mut log, Path::new("mem.log"));
        let mut fwd = Forward { stdout: Some(Broken), stderr: None::<Broken> };
        pump(Some(&b"a\nb\n"[..]), None::<&[u8]>, &mut recorder, &mut fwd).await;
        assert!(fwd.stdout.is_none());
        assert_eq!(recorder.finish(), "a\nb\n");
        assert_eq!(log, b"a\nb\n");
    }

    /// A log that fails after the first write, like a full disk.
    struct FullDisk(usize);

    impl Write for FullDisk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("no space left on device"));
            }
            self.0 -= 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failing_log_is_reported_in_the_tail() {
        let mut recorder = Recorder::new(FullDisk(1), Path::new("/x/step.log"));
        recorder.record(b"one\n");
        recorder.record(b"two\n");
        let tail = recorder.finish();
        assert!(tail.starts_with("one\ntwo\nbuildstate: writing the log /x/step.log failed"), "{tail}");
    }
}
