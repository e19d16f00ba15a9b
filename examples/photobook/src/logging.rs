//! Logging off the request path: events are formatted by the thread that
//! emits them and appended to that thread's own in-memory batch; a
//! background thread gathers every thread's batch, merges them in the
//! order the events were appended, and writes them to stderr (or any sink)
//! every [`FLUSH_INTERVAL`], or sooner when a batch grows past
//! [`FLUSH_AT`].
//!
//! Why not `tracing-appender`'s non-blocking writer: it hands each line
//! to its worker through a channel and the worker writes (and flushes)
//! after every drain, so under load every event wakes a thread and costs a
//! `write(2)`: on the two-core machine of `bench/README.md` that was most
//! of what synchronous logging cost. Here a request pays for formatting
//! its line and one lock that only its own thread and, every
//! [`FLUSH_INTERVAL`], the writer take; the system calls are one `write`
//! per batch. Why one batch per thread: with one batch for the process,
//! every event on every core wrote the same lock and buffer, and under
//! load that cache line moved between cores on every request
//! (bench/README.md, "Nothing shared between cores").
//!
//! **No line is dropped, and lines keep their order.** This is an audit
//! log (every token request and consent decision is logged at INFO), so
//! when the sink cannot keep up and a thread's batch reaches
//! [`BACKPRESSURE_AT`], that thread waits for the writer rather than lose
//! lines: back-pressure only when full, never loss. Each event is stamped
//! with a monotonic instant when it is appended, and the writer merges the
//! threads' batches by it, so the output is in the order the events
//! happened, as with one shared batch. What a batching writer can lose is
//! what it has not written yet when the process dies without unwinding
//! (`SIGKILL`, an abort): at most [`FLUSH_INTERVAL`] of lines. A graceful
//! stop (`SIGTERM`, Ctrl-C: the providers shut down and `main` returns)
//! drops the [`LogGuard`], which writes everything buffered before the
//! process exits; lines logged after that are written directly.

use std::cell::RefCell;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

mod format;
pub use format::AuditLayer;

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
/// A thread's batch this large is written at once, without waiting for the
/// interval.
pub const FLUSH_AT: usize = 256 * 1024;
/// A thread's batch this large makes that thread wait for the writer
/// (back-pressure) instead of growing further or dropping lines. So what
/// is held in memory is bounded by this much per thread that logs.
pub const BACKPRESSURE_AT: usize = 4 * 1024 * 1024;

/// Tells writers apart in the per-thread table (a process may make more
/// than one, as the tests do).
static NEXT_WRITER: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's batch in each writer it has logged to (usually one).
    static SLOTS: RefCell<Vec<(u64, Arc<Slot>)>> = const { RefCell::new(Vec::new()) };
}

/// One thread's batch.
#[derive(Default)]
struct Slot {
    state: Mutex<Batch>,
    /// Wakes the thread when it waits for room.
    room: Condvar,
}

/// When each event of a batch was appended, and where it ends in the bytes.
type Marks = Vec<(Instant, usize)>;

#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    /// When each event was appended, and where it ends in `bytes`.
    events: Marks,
    /// The buffers the writer hands back, reused for the next batch.
    spare_bytes: Vec<u8>,
    spare_events: Marks,
    /// The writer has stopped: write directly.
    closed: bool,
    /// The thread waits for room (so the writer wakes it only when needed).
    waiting: bool,
}

impl Batch {
    /// The lines appended before `cutoff` (their bytes and marks), leaving
    /// later ones in the batch; `None` when there are none. The batch's
    /// buffers are handed out and the spares take their place.
    fn take_before(&mut self, cutoff: Instant) -> Option<(Vec<u8>, Marks)> {
        let split = self.events.partition_point(|(at, _)| *at < cutoff);
        if split == 0 {
            return None;
        }
        let spare_bytes = std::mem::take(&mut self.spare_bytes);
        let spare_events = std::mem::take(&mut self.spare_events);
        let mut bytes = std::mem::replace(&mut self.bytes, spare_bytes);
        let mut events = std::mem::replace(&mut self.events, spare_events);
        if split < events.len() {
            // The few lines appended while the writer was gathering stay
            // for the next round, at the front of the fresh buffer.
            let cut = events[split - 1].1;
            self.bytes.extend_from_slice(&bytes[cut..]);
            self.events
                .extend(events[split..].iter().map(|&(at, end)| (at, end - cut)));
            bytes.truncate(cut);
            events.truncate(split);
        }
        Some((bytes, events))
    }
}

/// What the writer thread is told.
#[derive(Default)]
struct Control {
    /// Write now: a batch crossed [`FLUSH_AT`], or a line arrived while idle.
    wake: bool,
    closed: bool,
}

struct Shared {
    id: u64,
    /// Every thread's batch; a thread adds its own on its first line.
    slots: Mutex<Vec<Arc<Slot>>>,
    control: Mutex<Control>,
    wake_writer: Condvar,
    /// The writer sleeps until told: a thread whose batch was empty must
    /// wake it (see [`Shared::sleep_while_idle`]).
    idle: AtomicBool,
    /// Set under the `slots` lock when the writer stops: no new batches.
    closed: AtomicBool,
    sink: Mutex<Box<dyn Write + Send>>,
}

/// Locks a mutex; a panic while holding one leaves valid buffers: keep logging.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Nowhere to report a failing stderr; the line is as lost as it would be
/// with a synchronous writer. A sink that panics loses its batch the same
/// way, but not the writer thread: were that thread to die, every thread
/// that logs would end up waiting for room that never comes.
fn write_to(sink: &mut dyn Write, bytes: &[u8]) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sink.write_all(bytes).and_then(|()| sink.flush())
    }));
}

impl Shared {
    fn write_sink(&self, bytes: &[u8]) {
        write_to(&mut **lock(&self.sink), bytes);
    }

    fn wake(&self) {
        lock(&self.control).wake = true;
        self.wake_writer.notify_one();
    }

    /// Appends one formatted event (the fmt layer writes each event with
    /// one `write_all`) to the calling thread's batch.
    fn append(&self, line: &[u8]) {
        let done = SLOTS
            .try_with(|slots| {
                // Busy only if appending re-entered itself: write directly.
                let Ok(mut slots) = slots.try_borrow_mut() else {
                    return false;
                };
                let slot = match slots.iter().find(|(id, _)| *id == self.id) {
                    Some((_, slot)) => Arc::clone(slot),
                    None => match self.register() {
                        Some(slot) => {
                            // Forget the batches of writers that stopped.
                            slots.retain(|(_, s)| !lock(&s.state).closed);
                            slots.push((self.id, Arc::clone(&slot)));
                            slot
                        }
                        None => return false,
                    },
                };
                drop(slots);
                self.append_to(&slot, line)
            })
            .unwrap_or(false);
        if !done {
            // The writer has stopped, or this thread is exiting (its
            // thread-locals are gone): a line logged from a thread-local's
            // destructor may then come out before the thread's lines still
            // in its batch.
            self.write_sink(line);
        }
    }

    /// A new batch for the calling thread; `None` once the writer stopped.
    fn register(&self) -> Option<Arc<Slot>> {
        let mut slots = lock(&self.slots);
        if self.closed.load(Ordering::SeqCst) {
            return None;
        }
        let slot = Arc::new(Slot::default());
        slots.push(Arc::clone(&slot));
        Some(slot)
    }

    /// `false` when the batch is closed (the caller writes directly).
    fn append_to(&self, slot: &Slot, line: &[u8]) -> bool {
        if line.is_empty() {
            return true;
        }
        let mut batch = lock(&slot.state);
        while batch.bytes.len() >= BACKPRESSURE_AT && !batch.closed {
            batch.waiting = true;
            drop(batch);
            self.wake();
            batch = lock(&slot.state);
            if batch.bytes.len() >= BACKPRESSURE_AT && !batch.closed {
                // The writer empties the batch under this lock before it
                // notifies, so the condition is checked again on waking.
                batch = slot
                    .room
                    .wait_timeout(batch, FLUSH_INTERVAL * 5)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
        if batch.closed {
            return false;
        }
        let was_empty = batch.bytes.is_empty();
        batch.bytes.extend_from_slice(line);
        let end = batch.bytes.len();
        batch.events.push((Instant::now(), end));
        drop(batch);
        let crossed = end >= FLUSH_AT && end - line.len() < FLUSH_AT;
        if crossed || (was_empty && self.idle.load(Ordering::SeqCst)) {
            self.wake();
        }
        true
    }

    /// The writer thread: every [`FLUSH_INTERVAL`] (or when told), gathers
    /// every thread's batch and writes them as one; sleeps while there is
    /// nothing to write.
    fn run_writer(&self) {
        // However the loop ends, threads must not wait for this thread
        // any more: from then on they write directly.
        struct CloseOnExit<'a>(&'a Shared);
        impl Drop for CloseOnExit<'_> {
            fn drop(&mut self) {
                self.0.close_batches();
            }
        }
        let _close = CloseOnExit(self);
        let mut out = Vec::new();
        loop {
            let closing = {
                let mut control = lock(&self.control);
                if !control.wake && !control.closed {
                    control = self
                        .wake_writer
                        .wait_timeout(control, FLUSH_INTERVAL)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                control.wake = false;
                control.closed
            };
            let mut sink = lock(&self.sink);
            if closing {
                // Held across the last drain, so lines written directly
                // from now on come after everything buffered.
                self.close_batches();
            }
            let wrote = self.drain(&mut out, &mut **sink);
            drop(sink);
            if closing {
                return;
            }
            if !wrote {
                self.sleep_while_idle();
            }
        }
    }

    /// Closes every batch: from now on threads write directly.
    fn close_batches(&self) {
        let slots = lock(&self.slots);
        self.closed.store(true, Ordering::SeqCst);
        for slot in slots.iter() {
            lock(&slot.state).closed = true;
            slot.room.notify_all();
        }
    }

    /// Writes every thread's batch, merged in the order the events were
    /// appended; `false` when there was nothing.
    fn drain(&self, out: &mut Vec<u8>, sink: &mut dyn Write) -> bool {
        // Only what was appended before this instant is taken: the batches
        // are taken one at a time, so a line logged in one thread after its
        // batch was taken could otherwise be overtaken by a later line of a
        // thread whose batch is taken after it. Every line appended before
        // the cutoff is already in its batch: its instant is read under
        // the batch's lock, which we take after reading the cutoff.
        let cutoff = Instant::now();
        let slots: Vec<Arc<Slot>> = {
            let mut slots = lock(&self.slots);
            // A thread that ended dropped its reference: once its batch is
            // written, forget it.
            slots.retain(|s| Arc::strong_count(s) > 1 || !lock(&s.state).bytes.is_empty());
            slots.clone()
        };
        let mut taken: Vec<Taken> = Vec::new();
        for slot in slots {
            let mut batch = lock(&slot.state);
            if batch.bytes.is_empty() {
                continue;
            }
            let Some((bytes, events)) = batch.take_before(cutoff) else {
                continue;
            };
            if std::mem::take(&mut batch.waiting) {
                slot.room.notify_all();
            }
            drop(batch);
            taken.push((slot, bytes, events));
        }
        match taken.as_slice() {
            [] => return false,
            [(_, bytes, _)] => write_to(sink, bytes),
            _ => {
                out.clear();
                merge(&taken, out);
                write_to(sink, out);
                if out.capacity() > FLUSH_AT * 4 {
                    *out = Vec::new();
                }
            }
        }
        for (slot, mut bytes, mut events) in taken {
            bytes.clear();
            events.clear();
            let mut batch = lock(&slot.state);
            if bytes.capacity() <= FLUSH_AT * 2 && batch.spare_bytes.capacity() < bytes.capacity() {
                batch.spare_bytes = bytes;
            }
            if events.capacity() <= FLUSH_AT / 8
                && batch.spare_events.capacity() < events.capacity()
            {
                batch.spare_events = events;
            }
        }
        true
    }

    /// Sleeps until a line arrives in an empty batch, a batch crosses
    /// [`FLUSH_AT`], or the guard is dropped.
    fn sleep_while_idle(&self) {
        let mut control = lock(&self.control);
        self.idle.store(true, Ordering::SeqCst);
        // A thread that appended before it could see `idle` did not wake
        // us: look once more. (A thread appends under its batch's lock and
        // then reads `idle`; we set `idle` and then take each batch's lock.
        // So either we see its line here, or it sees `idle` and wakes us.)
        if !self.any_pending() {
            while !control.wake && !control.closed {
                control = self
                    .wake_writer
                    .wait(control)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
        self.idle.store(false, Ordering::SeqCst);
    }

    fn any_pending(&self) -> bool {
        lock(&self.slots)
            .iter()
            .any(|s| !lock(&s.state).bytes.is_empty())
    }
}

/// A batch taken from its thread: its slot, bytes and event marks.
type Taken = (Arc<Slot>, Vec<u8>, Marks);

/// Appends the events of several batches to `out`, earliest first (each
/// batch is already in order: a k-way merge over a handful of threads).
fn merge(batches: &[Taken], out: &mut Vec<u8>) {
    // Per batch: the next event and where it starts.
    let mut next = vec![(0usize, 0usize); batches.len()];
    loop {
        let mut earliest: Option<(usize, Instant)> = None;
        for (i, (_, _, events)) in batches.iter().enumerate() {
            if let Some(&(at, _)) = events.get(next[i].0) {
                if earliest.is_none_or(|(_, e)| at < e) {
                    earliest = Some((i, at));
                }
            }
        }
        let Some((i, _)) = earliest else { return };
        let (_, bytes, events) = &batches[i];
        let (event, start) = next[i];
        let end = events[event].1;
        out.extend_from_slice(&bytes[start..end]);
        next[i] = (event + 1, end);
    }
}

/// A [`MakeWriter`] that appends to the calling thread's batch; made by [`batched`].
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BatchWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchWriter").finish_non_exhaustive()
    }
}

/// One event's writer: appends what it is given to its thread's batch.
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
        lock(&self.shared.control).closed = true;
        self.shared.wake_writer.notify_one();
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
        id: NEXT_WRITER.fetch_add(1, Ordering::Relaxed),
        slots: Mutex::new(Vec::new()),
        control: Mutex::new(Control::default()),
        wake_writer: Condvar::new(),
        idle: AtomicBool::new(false),
        closed: AtomicBool::new(false),
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
/// a terminal (`ansi`, `tracing-subscriber`'s `fmt` layer), else as plain
/// lines by [`AuditLayer`] (the same text as the `fmt` layer's default, at
/// a fraction of its cost). Answers the guard to hold until the end of
/// `main`, or `None` when the writer thread could not start (then logging
/// is synchronous). A second call (a subscriber is already set) changes
/// nothing.
pub fn init_to(
    default_filter: &str,
    sink: impl Write + Send + 'static,
    ansi: bool,
    thread_name: &str,
) -> Option<LogGuard> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
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
            .try_init()
            .is_ok(),
        (true, None) => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .try_init()
            .is_ok(),
        (false, Some(writer)) => tracing_subscriber::registry()
            .with(filter())
            .with(AuditLayer::new(writer))
            .try_init()
            .is_ok(),
        (false, None) => tracing_subscriber::registry()
            .with(filter())
            .with(AuditLayer::new(std::io::stderr))
            .try_init()
            .is_ok(),
    };
    guard.filter(|_| installed)
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

    /// The bytes waiting in the calling thread's batch of `writer`.
    fn pending_here(writer: &BatchWriter) -> usize {
        SLOTS.with(|slots| {
            slots
                .borrow()
                .iter()
                .find(|(id, _)| *id == writer.shared.id)
                .map_or(0, |(_, s)| lock(&s.state).bytes.len())
        })
    }

    fn wait_for(sink: &Sink, what: &str) {
        let start = Instant::now();
        while !String::from_utf8_lossy(&sink.out.lock().unwrap()).contains(what) {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "{what:?} never written"
            );
            std::thread::sleep(Duration::from_millis(2));
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
            assert!(pending_here(&writer) <= BACKPRESSURE_AT + line.len());
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

    /// Threads keep their own batches, but the output is in the order the
    /// lines were logged: here each line is logged after the other
    /// thread's previous one, so any other order is wrong.
    #[test]
    fn lines_from_threads_come_out_in_the_order_they_were_logged() {
        let sink = Sink::default();
        let (writer, guard) = batched(sink.clone(), "test-log").unwrap();
        let (to_b, from_a) = std::sync::mpsc::channel::<u32>();
        let (to_a, from_b) = std::sync::mpsc::channel::<u32>();
        let w = writer.clone();
        let b = std::thread::spawn(move || {
            while let Ok(i) = from_a.recv() {
                w.make_writer()
                    .write_all(format!("line {}\n", i + 1).as_bytes())
                    .unwrap();
                if to_a.send(i + 1).is_err() {
                    break;
                }
            }
        });
        let mut i = 0;
        while i < 2_000 {
            writer
                .make_writer()
                .write_all(format!("line {i}\n").as_bytes())
                .unwrap();
            to_b.send(i).unwrap();
            i = from_b.recv().unwrap() + 1;
        }
        drop(to_b);
        b.join().unwrap();
        drop(guard);
        let out = String::from_utf8(sink.out.lock().unwrap().clone()).unwrap();
        let expected: Vec<String> = (0..2_000).map(|i| format!("line {i}")).collect();
        assert_eq!(out.lines().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn a_line_after_an_idle_spell_is_written_without_more_lines() {
        let sink = Sink::default();
        let (writer, _guard) = batched(sink.clone(), "test-log").unwrap();
        writer.make_writer().write_all(b"first\n").unwrap();
        wait_for(&sink, "first");
        // Long enough for the writer to find nothing and go to sleep.
        std::thread::sleep(FLUSH_INTERVAL * 5);
        assert!(writer.shared.idle.load(Ordering::SeqCst));
        writer.make_writer().write_all(b"second\n").unwrap();
        wait_for(&sink, "second");
        assert_eq!(&*sink.out.lock().unwrap(), b"first\nsecond\n");
    }

    #[test]
    fn a_thread_that_ends_has_its_lines_written_and_its_batch_forgotten() {
        let sink = Sink::default();
        let (writer, _guard) = batched(sink.clone(), "test-log").unwrap();
        let w = writer.clone();
        std::thread::spawn(move || {
            for i in 0..10 {
                w.make_writer()
                    .write_all(format!("gone {i}\n").as_bytes())
                    .unwrap();
            }
        })
        .join()
        .unwrap();
        wait_for(&sink, "gone 9");
        // The writer's next round forgets the ended thread's batch.
        let start = Instant::now();
        while !lock(&writer.shared.slots).is_empty() {
            assert!(start.elapsed() < Duration::from_secs(5), "batch kept");
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(
            String::from_utf8_lossy(&sink.out.lock().unwrap())
                .lines()
                .count(),
            10
        );
    }

    /// Threads log in bursts with pauses around the writer's interval, so
    /// the writer keeps going to sleep and being woken; after each burst
    /// the thread waits for its last line to be written, so a wake-up that
    /// is lost (a line left in memory while the writer sleeps) fails here
    /// rather than being rescued by the guard's final flush.
    #[test]
    fn no_line_waits_for_a_writer_that_went_to_sleep() {
        let sink = Sink::default();
        let (writer, _guard) = batched(sink.clone(), "test-log").unwrap();
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let writer = writer.clone();
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for burst in 0..40u64 {
                        for i in 0..3 {
                            writer
                                .make_writer()
                                .write_all(format!("t{t} b{burst} {i}\n").as_bytes())
                                .unwrap();
                        }
                        wait_for(&sink, &format!("t{t} b{burst} 2\n"));
                        let pause = (burst * 7 + t * 13) % 30;
                        std::thread::sleep(Duration::from_millis(pause));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(
            String::from_utf8_lossy(&sink.out.lock().unwrap())
                .lines()
                .count(),
            4 * 40 * 3
        );
    }

    #[test]
    fn after_the_guard_is_dropped_lines_are_written_directly() {
        let sink = Sink::default();
        let (writer, guard) = batched(sink.clone(), "test-log").unwrap();
        writer.make_writer().write_all(b"buffered\n").unwrap();
        drop(guard);
        writer.make_writer().write_all(b"direct\n").unwrap();
        // Another thread, new to this writer, too.
        let w = writer.clone();
        std::thread::spawn(move || w.make_writer().write_all(b"late\n").unwrap())
            .join()
            .unwrap();
        assert_eq!(&*sink.out.lock().unwrap(), b"buffered\ndirect\nlate\n");
    }

    /// The writer takes only what was appended before its cutoff; a line
    /// appended while it gathers stays, at the front, for the next round.
    #[test]
    fn a_batch_is_taken_up_to_the_cutoff() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut batch = Batch::default();
        for (ms, line) in [(1, "a\n"), (2, "bb\n"), (5, "ccc\n")] {
            batch.bytes.extend_from_slice(line.as_bytes());
            let end = batch.bytes.len();
            batch.events.push((at(ms), end));
        }
        assert!(batch.take_before(at(1)).is_none());
        let (bytes, events) = batch.take_before(at(3)).unwrap();
        assert_eq!(bytes, b"a\nbb\n");
        assert_eq!(events, [(at(1), 2), (at(2), 5)]);
        assert_eq!(batch.bytes, b"ccc\n");
        assert_eq!(batch.events, [(at(5), 4)]);
        let (bytes, events) = batch.take_before(at(9)).unwrap();
        assert_eq!((bytes.as_slice(), events.len()), (&b"ccc\n"[..], 1));
        assert!(batch.bytes.is_empty() && batch.events.is_empty());
    }

    /// A sink that panics loses its batches, as a failing one does, but
    /// nobody waits forever: threads keep logging past the back-pressure
    /// mark, and dropping the guard returns.
    #[test]
    fn a_panicking_sink_holds_nobody_up() {
        struct Panics;
        impl Write for Panics {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                panic!("the sink fails");
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (writer, guard) = batched(Panics, "test-log").unwrap();
        let line = [b'x'; 64 * 1024];
        let (done, finished) = std::sync::mpsc::channel();
        let w = writer.clone();
        std::thread::spawn(move || {
            for _ in 0..3 * BACKPRESSURE_AT / line.len() {
                w.make_writer().write_all(&line).unwrap();
            }
            let _ = done.send(());
        });
        finished
            .recv_timeout(Duration::from_secs(30))
            .expect("a thread logging through a panicking sink was held up");
        drop(guard);
        writer.make_writer().write_all(b"after\n").unwrap();
    }
}
