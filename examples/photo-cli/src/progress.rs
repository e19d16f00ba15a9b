//! The progress indicator on stderr while photo-cli waits for the person:
//! a spinner on a terminal, plain dots (no escape sequences) otherwise.

use std::cell::Cell;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// stderr is a terminal: a spinner redrawn in place, with a countdown.
    Spinner,
    /// stderr is a file or pipe: one `.` per poll, plain text only.
    Plain,
    /// Nothing at all (for tests of the polling logic).
    Hidden,
}

impl Style {
    /// [`Style::Spinner`] when stderr is a terminal, else [`Style::Plain`].
    pub fn detect() -> Self {
        if std::io::stderr().is_terminal() {
            Self::Spinner
        } else {
            Self::Plain
        }
    }
}

/// What one poll of the token endpoint came back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Poll {
    /// `authorization_pending`.
    Pending,
    /// `slow_down`: the interval grows by 5 s (RFC 8628 §3.5).
    SlowDown,
    /// The token endpoint could not be reached.
    Unreachable,
    /// Anything else: tokens or a final error.
    Done,
}

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const TICK: Duration = Duration::from_millis(100);

/// The progress indicator. Single-threaded: polls and sleeps alternate.
#[derive(Debug)]
pub struct Progress {
    style: Style,
    interval: Cell<Duration>,
    expires_at: Instant,
    polls: Cell<u32>,
    frame: Cell<usize>,
    last: Cell<Poll>,
    /// A line is being drawn (spinner) or dotted (plain) and not yet ended.
    open: Cell<bool>,
}

impl Progress {
    /// A fresh indicator for a code that may be polled every `interval` and
    /// expires in `expires_in`.
    pub fn new(style: Style, interval: Duration, expires_in: Duration) -> Self {
        Self {
            style,
            interval: Cell::new(interval),
            expires_at: Instant::now()
                .checked_add(expires_in)
                .unwrap_or_else(Instant::now),
            polls: Cell::new(0),
            frame: Cell::new(0),
            last: Cell::new(Poll::Pending),
            open: Cell::new(false),
        }
    }

    /// How many polls were reported.
    pub fn polls(&self) -> u32 {
        self.polls.get()
    }

    /// Records one poll's outcome.
    pub(crate) fn polled(&self, outcome: Poll) {
        self.polls.set(self.polls.get().saturating_add(1));
        self.last.set(outcome);
        match (self.style, outcome) {
            (Style::Hidden, _) | (_, Poll::Done) => {}
            (_, Poll::SlowDown) => {
                let next = self.interval.get().saturating_add(Duration::from_secs(5));
                self.interval.set(next);
                self.line(&format!(
                    "The provider asked photo-cli to slow down: checking every {} s now.",
                    next.as_secs()
                ));
            }
            (Style::Plain, Poll::Pending) => self.dot("."),
            (Style::Plain, Poll::Unreachable) => self.dot("!"),
            (Style::Spinner, Poll::Pending | Poll::Unreachable) => self.draw(),
        }
    }

    /// Waits `duration` with `sleep`, animating the spinner meanwhile.
    pub(crate) async fn wait<F: Future<Output = ()>>(&self, sleep: F) {
        if self.style != Style::Spinner {
            sleep.await;
            return;
        }
        let spin = async {
            loop {
                self.frame.set((self.frame.get() + 1) % FRAMES.len());
                self.draw();
                tokio::time::sleep(TICK).await;
            }
        };
        tokio::select! {
            () = sleep => {}
            () = spin => {}
        }
    }

    /// Shows that waiting has begun.
    pub fn start(&self) {
        match self.style {
            Style::Spinner => self.draw(),
            Style::Plain => self.header(),
            Style::Hidden => {}
        }
    }

    /// Ends the indicator's line, so what follows starts on a fresh one;
    /// `approved` says how the wait ended.
    pub fn finish(&self, approved: bool) {
        if !self.open.replace(false) {
            return;
        }
        match (self.style, approved) {
            (Style::Spinner, true) => write_stderr("\r\x1b[2KApproved.\n"),
            (Style::Spinner, false) => write_stderr("\r\x1b[2K"),
            (Style::Plain, true) => write_stderr(" approved.\n"),
            (Style::Plain, false) => write_stderr("\n"),
            (Style::Hidden, _) => {}
        }
    }

    /// A whole line of its own (the open line is ended first).
    fn line(&self, text: &str) {
        self.finish(false);
        write_stderr(&format!("{text}\n"));
    }

    /// Plain style: the line the marks follow.
    fn header(&self) {
        self.open.set(true);
        write_stderr(&format!(
            "Waiting for approval in the browser (checking every {} s): ",
            self.interval.get().as_secs()
        ));
    }

    /// Plain style: one mark per poll.
    fn dot(&self, mark: &str) {
        if !self.open.get() {
            self.header();
        }
        write_stderr(mark);
    }

    /// Spinner style: redraws the line in place.
    fn draw(&self) {
        self.open.set(true);
        let left = self
            .expires_at
            .saturating_duration_since(Instant::now())
            .as_secs();
        let state = if self.last.get() == Poll::Unreachable {
            "provider not answering, retrying"
        } else {
            "waiting for approval in the browser"
        };
        write_stderr(&format!(
            "\r\x1b[2K{} {state} (checked {} time{}, every {} s; code expires in {}:{:02})",
            FRAMES[self.frame.get() % FRAMES.len()],
            self.polls.get(),
            if self.polls.get() == 1 { "" } else { "s" },
            self.interval.get().as_secs(),
            left / 60,
            left % 60,
        ));
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish(false);
    }
}

fn write_stderr(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}
