//! Logging off the request path: events are formatted by the thread that
//! emits them and appended to an in-memory batch; a background thread
//! writes the batch to stderr (or any sink) every [`FLUSH_INTERVAL`], or
//! sooner when it grows past [`FLUSH_AT`].
//!
//! Why not `tracing-appender`'s non-blocking writer: it hands each line
//! to its worker through a channel and the worker writes (and flushes)
//! after every drain, so under load every event wakes a thread and costs a
//! `write(2)`: on the two-core machine of `bench/README.md` that was most
//! of what synchronous logging cost. Here a request pays for formatting
//! its line and one uncontended lock; the system calls are one `write` per
//! batch.
//!
//! **No line is dropped.** This is an audit log (every token request and
//! consent decision is logged at INFO), so when the sink cannot keep up
//! and the batch reaches [`BACKPRESSURE_AT`], emitting threads wait for
//! the writer rather than lose lines: back-pressure only when full, never
//! loss. What a batching writer can lose is what it has not written yet
//! when the process dies without unwinding (`SIGKILL`, an abort): at most
//! [`FLUSH_INTERVAL`] of lines. A graceful stop (`SIGTERM`, Ctrl-C: the
//! providers shut down and `main` returns) drops the [`LogGuard`], which
//! writes everything buffered before the process exits.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

mod format;
pub use format::{AuditFields, AuditFormat};

/// `photo-provider`'s filter when `RUST_LOG` is unset: every decision of
/// the core (`tessera`: token requests, authorization requests, consent,
/// client authentication failures) and of the demo at INFO.
pub const AXUM_PROVIDER_FILTER: &str =
    "photo_provider=info,photobook=info,tessera=info,tessera_axum=info";
/// `photo-provider-rocket`'s filter when `RUST_LOG` is unset: as
/// [`AXUM_PROVIDER_FILTER`]; Rocket logs a failed guard (a plain 401) as a
/// warning under the route's module, `photo_provider_rocket::_`: not news.
pub const ROCKET_PROVIDER_FILTER: &str = "photo_provider_rocket=info,photo_provider_rocket::_=error,photobook=info,tessera=info,tessera_rocket=info";

/// How long a line may wait in memory before it is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(20);
/// A batch this large is written at once, without waiting for the interval.
pub const FLUSH_AT: usize = 256 * 1024;
/// A batch this large makes emitting threads wait for the writer
/// (back-pressure) instead of growing further or dropping lines.
pub const BACKPRESSURE_AT: usize = 8 * 1024 * 1024;

struct State {
    batch: Vec<u8>,
    /// The buffer the writer thread hands back, reused for the next batch.
    spare: Vec<u8>,
    closed: bool,
    /// Threads waiting for room (so the writer wakes them only when needed).
    waiting: usize,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the writer thread: a first line, a large batch, or closing.
    wake_writer: Condvar,
    /// Wakes threads waiting for room in the batch.
    room: Condvar,
    sink: Mutex<Box<dyn Write + Send>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a valid Vec: keep logging.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_sink(&self, bytes: &[u8]) {
        let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        // Nowhere to report a failing stderr; the line is as lost as it
        // would be with a synchronous writer.
        let _ = sink.write_all(bytes).and_then(|()| sink.flush());
    }

    /// Appends one formatted event (the fmt layer writes each event with one `write_all`).
    fn append(&self, line: &[u8]) {
        let mut st = self.lock();
        while st.batch.len() >= BACKPRESSURE_AT && !st.closed {
            st.waiting += 1;
            st = self.room.wait(st).unwrap_or_else(PoisonError::into_inner);
            st.waiting -= 1;
        }
        if st.closed {
            // After the guard is gone (end of `main`): write directly.
            drop(st);
            self.write_sink(line);
            return;
        }
        let was_empty = st.batch.is_empty();
        st.batch.extend_from_slice(line);
        let crossed = st.batch.len() >= FLUSH_AT && st.batch.len() - line.len() < FLUSH_AT;
        drop(st);
        if was_empty || crossed {
            self.wake_writer.notify_one();
        }
    }

    /// The writer thread: sleeps while there is nothing to write, then
    /// gathers lines for up to [`FLUSH_INTERVAL`] and writes them at once.
    fn run_writer(&self) {
        loop {
            let mut st = self.lock();
            while st.batch.is_empty() && !st.closed {
                st = self
                    .wake_writer
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            let deadline = Instant::now() + FLUSH_INTERVAL;
            while st.batch.len() < FLUSH_AT && !st.closed {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                st = self
                    .wake_writer
                    .wait_timeout(st, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            let spare = std::mem::take(&mut st.spare);
            let mut batch = std::mem::replace(&mut st.batch, spare);
            let closed = st.closed;
            let wake_waiters = st.waiting > 0;
            drop(st);
            if wake_waiters {
                self.room.notify_all();
            }
            if !batch.is_empty() {
                self.write_sink(&batch);
            }
            batch.clear();
            let mut st = self.lock();
            if st.spare.capacity() < batch.capacity() && batch.capacity() <= FLUSH_AT * 2 {
                st.spare = batch;
            }
            if closed && st.batch.is_empty() {
                return;
            }
        }
    }
}

/// A [`MakeWriter`] that appends to the batch; made by [`batched`].
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BatchWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchWriter").finish_non_exhaustive()
    }
}

/// One event's writer: appends what it is given to the batch.
#[derive(Debug)]
pub struct LineWriter<'a> {
    writer: &'a BatchWriter,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.shared.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter { writer: self }
    }
}

/// Keeps the writer thread alive; dropping it writes every buffered line
/// and stops the thread. Hold it until the end of `main`.
#[must_use = "dropping the guard stops the log writer (after writing what is buffered)"]
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogGuard").finish_non_exhaustive()
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake_writer.notify_one();
        self.shared.room.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A batching writer over `sink`, its background thread named
/// `thread_name`, and the guard that flushes it. Fails only when the
/// thread cannot be started.
pub fn batched(
    sink: impl Write + Send + 'static,
    thread_name: &str,
) -> io::Result<(BatchWriter, LogGuard)> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            batch: Vec::with_capacity(64 * 1024),
            spare: Vec::with_capacity(64 * 1024),
            closed: false,
            waiting: 0,
        }),
        wake_writer: Condvar::new(),
        room: Condvar::new(),
        sink: Mutex::new(Box::new(sink)),
    });
    let writer_side = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name(thread_name.to_owned())
        .spawn(move || writer_side.run_writer())?;
    Ok((
        BatchWriter {
            shared: Arc::clone(&shared),
        },
        LogGuard {
            shared,
            thread: Some(thread),
        },
    ))
}

/// Installs the demo's subscriber: `RUST_LOG` (or `default_filter` when
/// unset), written through a [`batched`] writer over `sink`: in colour for
/// a terminal (`ansi`), else as plain lines by [`AuditFormat`] (the same
/// text as `tracing-subscriber`'s default, at a fraction of its cost).
/// Answers the guard to hold until the end of `main`, or `None` when the
/// writer thread could not start (then logging is synchronous). A second
/// call (a subscriber is already set) changes nothing.
pub fn init_to(
    default_filter: &str,
    sink: impl Write + Send + 'static,
    ansi: bool,
    thread_name: &str,
) -> Option<LogGuard> {
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter))
    };
    let (writer, guard) = match batched(sink, thread_name) {
        Ok((writer, guard)) => (Some(writer), Some(guard)),
        Err(_) => (None, None),
    };
    let installed = match (ansi, writer) {
        (true, Some(writer)) => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(writer)
            .try_init(),
        (true, None) => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .try_init(),
        (false, Some(writer)) => plain()
            .with_env_filter(filter())
            .with_writer(writer)
            .try_init(),
        (false, None) => plain()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .try_init(),
    };
    guard.filter(|_| installed.is_ok())
}

/// The plain-text subscriber builder: [`AuditFormat`] lines, no colours.
fn plain() -> tracing_subscriber::fmt::SubscriberBuilder<
    AuditFields,
    AuditFormat,
    tracing_subscriber::filter::LevelFilter,
> {
    tracing_subscriber::fmt()
        .with_ansi(false)
        .event_format(AuditFormat)
        .fmt_fields(AuditFields)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink tests can read, and that can be made slow.
    #[derive(Clone, Default)]
    struct Sink {
        out: Arc<Mutex<Vec<u8>>>,
        writes: Arc<Mutex<usize>>,
        delay: Duration,
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            std::thread::sleep(self.delay);
            *self.writes.lock().unwrap() += 1;
            self.out.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_once_in_order_by_the_time_the_guard_drops() {
        let sink = Sink::default();
        let (writer, guard) = batched(sink.clone(), "test-log").unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        let line = format!("t{t} line {i}\n");
                        writer.make_writer().write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let out = String::from_utf8(sink.out.lock().unwrap().clone()).unwrap();
        for t in 0..4 {
            let mine: Vec<&str> = out
                .lines()
                .filter(|l| l.starts_with(&format!("t{t} ")))
                .collect();
            assert_eq!(mine.len(), 20_000);
            for (i, l) in mine.iter().enumerate() {
                assert_eq!(*l, format!("t{t} line {i}"));
            }
        }
        // Batched: far fewer writes than lines.
        assert!(*sink.writes.lock().unwrap() < 80_000 / 10);
    }

    #[test]
    fn a_slow_sink_holds_writers_back_instead_of_dropping_lines() {
        let sink = Sink {
            delay: Duration::from_millis(30),
            ..Sink::default()
        };
        let (writer, guard) = batched(sink.clone(), "test-log").unwrap();
        let line = vec![b'x'; 64 * 1024 - 1];
        let mut line = line;
        line.push(b'\n');
        // 3 x BACKPRESSURE_AT through a sink that takes 30 ms per batch.
        let n = 3 * BACKPRESSURE_AT / line.len();
        for _ in 0..n {
            writer.make_writer().write_all(&line).unwrap();
            assert!(writer.shared.lock().batch.len() <= BACKPRESSURE_AT + line.len());
        }
        drop(guard);
        assert_eq!(sink.out.lock().unwrap().len(), n * line.len());
    }

    #[test]
    fn a_line_is_written_within_the_interval_without_more_lines() {
        let sink = Sink::default();
        let (writer, _guard) = batched(sink.clone(), "test-log").unwrap();
        writer.make_writer().write_all(b"alone\n").unwrap();
        let start = Instant::now();
        while sink.out.lock().unwrap().is_empty() {
            assert!(start.elapsed() < Duration::from_secs(2), "never written");
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(&*sink.out.lock().unwrap(), b"alone\n");
    }
}
