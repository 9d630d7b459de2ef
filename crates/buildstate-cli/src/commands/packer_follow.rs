//! Following a Packer run as it prints: each machine-readable line is shown to people as
//! Packer would have printed it without `-machine-readable`, fed to [`Progress`], and the
//! milestones it reaches are recorded at once through the [`Driver`].

use std::collections::VecDeque;

use buildstate_runner::integrate::Driver;
use buildstate_runner::packer::{Line, LineSplitter, Progress, cut_text, parse_line};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Lines of rendered output kept for a failure's `log_tail` (the raw stream is in the log).
const TAIL_LINES: usize = 40;

pub struct Follow {
    pub progress: Progress,
    /// The last lines as people saw them.
    pub tail: VecDeque<String>,
    /// The first error recording a milestone; later milestones are not tried after it.
    pub reach_error: Option<String>,
}

impl Follow {
    pub fn new(progress: Progress) -> Follow {
        Follow { progress, tail: VecDeque::new(), reach_error: None }
    }

    /// Reads Packer's stdout to its end. Never stops early: a reader that stopped would
    /// block Packer on a full pipe.
    pub async fn run<R, O, E>(&mut self, mut from: R, driver: &mut Driver, mut out: O, mut err: E)
    where
        R: AsyncRead + Unpin,
        O: AsyncWrite + Unpin,
        E: AsyncWrite + Unpin,
    {
        let mut splitter = LineSplitter::default();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for line in splitter.push(&buf[..n]) {
                self.line(&line, driver, &mut out, &mut err).await;
            }
        }
        if let Some(line) = splitter.finish() {
            self.line(&line, driver, &mut out, &mut err).await;
        }
        let _ = out.flush().await;
        let _ = err.flush().await;
    }

    async fn line<O, E>(&mut self, raw: &str, driver: &mut Driver, out: &mut O, err: &mut E)
    where
        O: AsyncWrite + Unpin,
        E: AsyncWrite + Unpin,
    {
        let line = parse_line(raw);
        let shown = match &line {
            Line::Record(r) => r.human().map(|(text, to_err)| (cut_text(text).into_owned(), to_err)),
            Line::Plain(text) => Some((cut_text(text).into_owned(), false)),
        };
        if let Some((text, to_err)) = shown {
            if to_err {
                emit(err, &text).await;
            } else {
                emit(out, &text).await;
            }
            for l in text.lines().filter(|l| !l.trim().is_empty()) {
                if self.tail.len() == TAIL_LINES {
                    self.tail.pop_front();
                }
                self.tail.push_back(l.to_owned());
            }
        }
        for code in self.progress.feed(&line) {
            if self.reach_error.is_some() {
                break;
            }
            if let Err(e) = driver.reach(code, "packer").await {
                let message = format!("could not record milestone {code}: {e}");
                tracing::warn!("{message}");
                crate::output::warning(&message);
                self.reach_error = Some(message);
            }
        }
    }

    /// The rendered tail, one string.
    pub fn tail_text(&self) -> String {
        self.tail.iter().map(String::as_str).collect::<Vec<_>>().join("\n")
    }
}

/// One line to people; a closed stdout must not stop the build from being followed.
async fn emit<W: AsyncWrite + Unpin>(w: &mut W, text: &str) {
    let _ = w.write_all(format!("{text}\n").as_bytes()).await;
    let _ = w.flush().await;
}
