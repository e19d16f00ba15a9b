//! The demo's log line, written by a `tracing` layer of its own rather
//! than `tracing-subscriber`'s `fmt` layer: the same text as that layer's
//! default (`Full`, no colours) format,
//!
//! ```text
//! 2026-11-30T21:51:24.803525Z  INFO oauth{endpoint="token" method=POST}: tessera::server::token: token request client="backup-job" grant_type="client_credentials" outcome="issued"
//! ```
//!
//! at a fraction of the cost (bench/README.md, "Logging"): the line is
//! built in a plain `String` (no `dyn fmt::Write` per piece, no ANSI
//! styling objects for a plain-text sink), the date and time are
//! formatted once a second per thread, and plain text values are copied
//! instead of going through `Debug`. Text values (`field = "…"`, `?`)
//! keep `Debug`'s quoting and escaping, so such a value with a newline or
//! a quote cannot forge a line or a field, and terminal control characters
//! in a message are escaped as the `fmt` layer escapes them. A value logged
//! with `%` (`Display`) is written as it is, as the `fmt` layer writes it:
//! log what a caller chose with `?`, as the core does for a claimed
//! `client_id`. Events from the `log` crate
//! are shown under their own target and level, as the `fmt` layer shows
//! them.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// A layer that writes each event as one plain-text line (see the module
/// docs) to `W`, with one `write_all` per line: put it over a
/// [`Registry`](tracing_subscriber::Registry) and a filter.
#[derive(Debug, Clone)]
pub struct AuditLayer<W> {
    make_writer: W,
}

impl<W> AuditLayer<W> {
    /// Lines to `make_writer` (for instance a [`BatchWriter`](super::BatchWriter)).
    pub fn new(make_writer: W) -> Self {
        Self { make_writer }
    }
}

/// A span's fields as its lines show them, formatted once when the span is
/// made (and extended when it records more).
struct SpanFields(String);

/// A line buffer grown past this is dropped after its line, not kept for
/// the next event.
const KEEP_BUFFER: usize = 16 * 1024;

thread_local! {
    /// The line being built, reused from event to event.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

impl<S, W> Layer<S> for AuditLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = String::new();
        attrs.record(&mut FieldVisitor::new(&mut fields, true));
        // `replace`, not `insert`: a second layer of this kind must not panic.
        span.extensions_mut().replace(SpanFields(fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<SpanFields>() {
            Some(SpanFields(fields)) => {
                // As the `fmt` layer: a space before whatever is recorded
                // (even nothing) when the span has fields already.
                if !fields.is_empty() {
                    fields.push(' ');
                }
                values.record(&mut FieldVisitor::new(fields, true));
            }
            None => {
                let mut fields = String::new();
                values.record(&mut FieldVisitor::new(&mut fields, true));
                extensions.replace(SpanFields(fields));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let write = |line: &mut String| {
            line.clear();
            if format_line(line, event, &ctx).is_ok() {
                // Nowhere to report a failing sink: the line is as lost as
                // the `fmt` layer would lose it.
                let _ = self
                    .make_writer
                    .make_writer_for(event.metadata())
                    .write_all(line.as_bytes());
            }
        };
        let used = LINE.try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut line) => {
                write(&mut line);
                if line.capacity() > KEEP_BUFFER {
                    *line = String::new();
                }
                true
            }
            // Logging from within a write (a sink that logs): a line of its own.
            Err(_) => false,
        });
        if used != Ok(true) {
            write(&mut String::new());
        }
    }
}

/// Timestamp, level, the spans the event is in with their fields, target,
/// then message and fields, and a newline.
fn format_line<S>(line: &mut String, event: &Event<'_>, ctx: &Context<'_, S>) -> fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    // An event from the `log` crate carries its record's target and level
    // in fields (`log.target`, ...); shown as its own, as `fmt` does.
    let normalized = event.normalized_metadata();
    let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
    write_timestamp(line)?;
    line.push_str(level_text(*meta.level()));
    if let Some(scope) = ctx.event_scope(event) {
        let mut any = false;
        for span in scope.from_root() {
            line.push_str(span.name());
            if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                if !fields.is_empty() {
                    line.push('{');
                    line.push_str(fields);
                    line.push('}');
                }
            }
            line.push(':');
            any = true;
        }
        if any {
            line.push(' ');
        }
    }
    line.push_str(meta.target());
    line.push_str(": ");
    let mut visitor = FieldVisitor::new(line, true);
    event.record(&mut visitor);
    visitor.result?;
    line.push('\n');
    Ok(())
}

/// `tracing-subscriber`'s default format puts the level right-aligned in
/// five columns between single spaces.
fn level_text(level: Level) -> &'static str {
    match level {
        Level::TRACE => " TRACE ",
        Level::DEBUG => " DEBUG ",
        Level::INFO => "  INFO ",
        Level::WARN => "  WARN ",
        Level::ERROR => " ERROR ",
    }
}

/// Appends fields as `name=value` separated by spaces, the message bare.
struct FieldVisitor<'w> {
    out: &'w mut String,
    /// Nothing written yet: no separating space before the next field.
    first: bool,
    result: fmt::Result,
}

impl<'w> FieldVisitor<'w> {
    /// Appends to `out`; `first` when no field precedes (no separating space).
    fn new(out: &'w mut String, first: bool) -> Self {
        Self {
            out,
            first,
            result: Ok(()),
        }
    }

    /// Writes the separator and `name=` (nothing for the message), and
    /// says whether the field is the message; `None` for a field the line
    /// leaves out (`log.*`: the `log` crate's record, shown as the event's
    /// own target and level).
    /// `room` is what the value will likely take, reserved with the rest
    /// so the pieces are copied without growing the line in between.
    fn start(&mut self, field: &Field, room: usize) -> Option<bool> {
        let name = field.name();
        if name.starts_with("log.") {
            return None;
        }
        self.out.reserve(name.len() + room + 4);
        if !self.first {
            self.out.push(' ');
        }
        self.first = false;
        if name == "message" {
            return Some(true);
        }
        // Raw identifiers (`r#type`) are written without their prefix,
        // as the default format does.
        self.out.push_str(name.strip_prefix("r#").unwrap_or(name));
        self.out.push('=');
        Some(false)
    }

    fn str_value(&mut self, field: &Field, value: &str) -> fmt::Result {
        match self.start(field, value.len()) {
            None => Ok(()),
            Some(true) => {
                push_escaped(self.out, value);
                Ok(())
            }
            // `Debug` of a str, without its per-character escaping
            // machinery when nothing needs escaping (the usual case).
            Some(false) if value.bytes().all(plain_byte) => {
                self.out.push('"');
                self.out.push_str(value);
                self.out.push('"');
                Ok(())
            }
            Some(false) => write!(self.out, "{value:?}"),
        }
    }

    fn debug_value(&mut self, field: &Field, value: &dyn fmt::Debug) -> fmt::Result {
        match self.start(field, 16) {
            None => Ok(()),
            Some(true) => {
                // Written as it is, then escaped only if it has to be (a
                // message is nearly always plain text).
                let start = self.out.len();
                write!(self.out, "{value:?}")?;
                if self.out.get(start..).is_some_and(may_need_escaping) {
                    let written = self.out.split_off(start);
                    push_escaped(self.out, &written);
                }
                Ok(())
            }
            Some(false) => write!(self.out, "{value:?}"),
        }
    }
}

/// A byte `Debug` of a str writes as it is.
fn plain_byte(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'
}

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_ok() {
            self.result = self.str_value(field, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_ok() {
            self.result = self.debug_value(field, value);
        }
    }

    /// As the `fmt` layer: the error's text, then its sources as a list
    /// (`error=refused error.sources=[timed out]`).
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.result.is_err() {
            return;
        }
        let mut text = String::new();
        push_escaped(&mut text, &display(value));
        if let Some(source) = value.source() {
            let _ = write!(text, " {}.sources={}", field.name(), Sources(source));
        }
        self.result = self.debug_value(field, &format_args!("{text}"));
    }
}

/// An error's text; what its `Display` wrote before failing, if it fails
/// (`to_string` would panic).
fn display(error: &dyn std::error::Error) -> String {
    let mut text = String::new();
    let _ = write!(text, "{error}");
    text
}

/// An error's sources, each escaped: `[first, second]`.
struct Sources<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('[')?;
        let mut current = Some(self.0);
        let mut first = true;
        while let Some(error) = current {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            let mut escaped = String::new();
            push_escaped(&mut escaped, &display(error));
            f.write_str(&escaped)?;
            current = error.source();
        }
        f.write_char(']')
    }
}

/// Appends `text`, escaping the characters a terminal acts on (ESC, BEL,
/// BS, FF, DEL and the C1 controls) as the `fmt` layer escapes a message:
/// a logged message cannot restyle or rewrite the operator's terminal.
fn push_escaped(out: &mut String, text: &str) {
    if !may_need_escaping(text) {
        out.push_str(text);
        return;
    }
    let mut rest = text;
    while let Some(at) = rest.find(|c: char| needs_escape(c)) {
        out.push_str(&rest[..at]);
        let mut chars = rest[at..].chars();
        if let Some(c) = chars.next() {
            match c {
                '\x1b' => out.push_str("\\x1b"),
                '\x07' => out.push_str("\\x07"),
                '\x08' => out.push_str("\\x08"),
                '\x0c' => out.push_str("\\x0c"),
                '\x7f' => out.push_str("\\x7f"),
                c => {
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
            }
        }
        rest = chars.as_str();
    }
    out.push_str(rest);
}

/// A quick byte scan: `false` means [`push_escaped`] would copy `text` as
/// it is (`0xc2` starts every C1 control in UTF-8, and a few letters).
fn may_need_escaping(text: &str) -> bool {
    text.bytes()
        .any(|b| matches!(b, 0x1b | 0x07 | 0x08 | 0x0c | 0x7f | 0xc2))
}

fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}'
    )
}

/// The seconds the thread last formatted, and their text
/// (`YYYY-MM-DDTHH:MM:SS`).
struct CachedSecond {
    unix: u64,
    text: String,
}

thread_local! {
    static SECOND: RefCell<CachedSecond> = const {
        RefCell::new(CachedSecond { unix: u64::MAX, text: String::new() })
    };
}

/// `2026-11-30T21:51:24.803525Z `: RFC 3339 in UTC with microseconds, as
/// the default format writes it.
fn write_timestamp(line: &mut String) -> fmt::Result {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let unix = now.as_secs();
    let seconds = |unix: u64, out: &mut String| {
        let at = i64::try_from(unix)
            .ok()
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        write!(
            out,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        )
    };
    let cached = SECOND.try_with(|cell| {
        // Busy only if formatting re-entered itself.
        let Ok(mut cached) = cell.try_borrow_mut() else {
            return seconds(unix, line);
        };
        if cached.unix != unix {
            cached.text.clear();
            seconds(unix, &mut cached.text)?;
            cached.unix = unix;
        }
        line.push_str(&cached.text);
        Ok(())
    });
    match cached {
        Ok(written) => written?,
        // A line logged while the thread exits (its thread-locals gone).
        Err(_) => seconds(unix, line)?,
    }
    let micros = now.subsec_micros();
    line.push('.');
    for power in [100_000, 10_000, 1_000, 100, 10, 1] {
        // A single decimal digit: `micros` is below 1,000,000.
        line.push(char::from(b'0' + (micros / power % 10) as u8));
    }
    line.push('Z');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Sink {
        type Writer = Sink;
        fn make_writer(&'a self) -> Sink {
            self.clone()
        }
    }

    fn lines(f: impl FnOnce(), lean: bool) -> String {
        use tracing_subscriber::layer::SubscriberExt as _;
        let sink = Sink::default();
        if lean {
            let subscriber = tracing_subscriber::registry().with(AuditLayer::new(sink.clone()));
            tracing::subscriber::with_default(subscriber, f);
        } else {
            let subscriber = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_writer(sink.clone())
                .finish();
            tracing::subscriber::with_default(subscriber, f);
        }
        let out = sink.0.lock().unwrap().clone();
        String::from_utf8(out).unwrap()
    }

    #[derive(Debug)]
    struct Failure(&'static str, Option<Box<Failure>>);

    impl fmt::Display for Failure {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Failure {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    fn events() {
        let span = tracing::info_span!("oauth", endpoint = "token", method = %"POST", late = tracing::field::Empty);
        let _entered = span.enter();
        tracing::info!(client = %"backup-job", grant_type = ?"client_credentials", outcome = "issued", "token request");
        span.record("late", "set: later");
        let inner = tracing::info_span!("inner");
        inner.in_scope(|| {
            tracing::warn!(
                user = "a\"b\nsigned in user=alice",
                n = 3,
                ok = true,
                "odd \"values\""
            );
        });
        tracing::error!(r#type = "x", "é and \u{202e} £5");
        let quiet = tracing::info_span!("quiet", a = 1, b = tracing::field::Empty);
        quiet.record("b", tracing::field::Empty);
        quiet.in_scope(|| tracing::info!("in quiet"));
        // Terminal control characters in a message are escaped (also
        // when formatted), in a quoted value by `Debug`.
        tracing::info!(v = "\x1b[2J", "clear \x1b[31mred\x07 \u{9b}");
        let who = "\x1b]0;title\x07";
        tracing::info!("hello {who}");
        tracing::info!(text = %"plain", "");
        let error = Failure(
            "refused\x1b",
            Some(Box::new(Failure(
                "timed out",
                Some(Box::new(Failure("reset", None))),
            ))),
        );
        tracing::warn!(
            error = &error as &(dyn std::error::Error + 'static),
            "failed"
        );
        let alone = Failure("alone", None);
        tracing::warn!(error = &alone as &(dyn std::error::Error + 'static));
        // A `log` record: under its own target and level, `log.*` fields left out.
        let record = tracing_log::log::Record::builder()
            .args(format_args!("from log"))
            .level(tracing_log::log::Level::Warn)
            .target("rocket::server")
            .module_path(Some("rocket::server"))
            .file(Some("server.rs"))
            .line(Some(7))
            .build();
        tracing_log::format_trace(&record).unwrap();
    }

    /// The same text as `tracing-subscriber`'s default format, but for the
    /// timestamp's digits.
    #[test]
    fn lines_match_the_default_format() {
        let strip = |s: &str| -> Vec<String> {
            s.lines()
                .map(|l| {
                    let (ts, rest) = l.split_at(27);
                    assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{l}");
                    rest.to_owned()
                })
                .collect()
        };
        let lean = lines(events, true);
        let default = lines(events, false);
        assert_eq!(strip(&lean), strip(&default), "\n{lean}\n{default}");
        assert_eq!(lean.lines().count(), 10, "{lean}");
        assert!(lean.contains(r"clear \x1b[31mred\x07 \u{9b}"), "{lean}");
        assert!(lean.contains(r"hello \x1b]0;title\x07"), "{lean}");
        assert!(!lean.contains('\x1b'), "{lean}");
        let from_log = lean.lines().find(|l| l.contains("from log")).unwrap();
        assert!(
            from_log.contains("  WARN ") && from_log.ends_with(" rocket::server: from log"),
            "{from_log}"
        );
        assert!(
            lean.contains(r#"late="set: later""#),
            "a recorded field extends the span's: {lean}"
        );
        // A newline in a value cannot start a line.
        assert!(
            lean.contains(r#"user="a\"b\nsigned in user=alice""#),
            "{lean}"
        );
    }

    #[test]
    fn the_timestamp_is_the_current_utc_time() {
        let out = lines(|| tracing::info!("x"), true);
        let ts = &out[..27];
        let parsed =
            time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
                .unwrap();
        let now = time::OffsetDateTime::now_utc();
        assert!((now - parsed).whole_seconds().abs() <= 2, "{ts}");
    }
}
