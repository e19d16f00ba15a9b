//! The demo's log line, written without `tracing-subscriber`'s general
//! machinery: the same text as its default (`Full`, no colours) format,
//!
//! ```text
//! 2026-11-30T21:51:24.803525Z  INFO oauth{endpoint="token" method=POST}: tessera::server::token: token request client=backup-job grant_type="client_credentials" outcome="issued"
//! ```
//!
//! at a fraction of the cost (bench/README.md, "Logging"): the date and
//! time are formatted once a second per thread, plain text values are
//! copied instead of going through `Debug`, and no ANSI styling objects
//! are built for a plain-text sink. Text values keep `Debug`'s quoting and
//! escaping, so a value with a newline or a quote still cannot forge a
//! line or a field.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats an event's line: timestamp, level, the spans it is in with
/// their fields, target, then message and fields (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditFormat;

/// Formats fields as `name=value` separated by spaces, the message first
/// and bare; text values quoted and escaped as `Debug` does.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditFields;

impl<S, N> FormatEvent<S, N> for AuditFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write_timestamp(&mut writer)?;
        let meta = event.metadata();
        writer.write_str(level_text(*meta.level()))?;
        if let Some(scope) = ctx.event_scope() {
            let mut any = false;
            for span in scope.from_root() {
                writer.write_str(span.name())?;
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>() {
                    if !fields.is_empty() {
                        writer.write_char('{')?;
                        writer.write_str(fields)?;
                        writer.write_char('}')?;
                    }
                }
                writer.write_char(':')?;
                any = true;
            }
            if any {
                writer.write_char(' ')?;
            }
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

impl<'writer> FormatFields<'writer> for AuditFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = FieldVisitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
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

struct FieldVisitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl FieldVisitor<'_> {
    /// Writes the separator and `name=` (nothing for the message), and
    /// says whether the field is the message.
    fn start(&mut self, field: &Field) -> Result<bool, fmt::Error> {
        if !self.first {
            self.writer.write_char(' ')?;
        }
        self.first = false;
        let name = field.name();
        if name == "message" {
            return Ok(true);
        }
        // Raw identifiers (`r#type`) are written without their prefix,
        // as the default format does.
        self.writer
            .write_str(name.strip_prefix("r#").unwrap_or(name))?;
        self.writer.write_char('=')?;
        Ok(false)
    }

    fn str_value(&mut self, field: &Field, value: &str) -> fmt::Result {
        if self.start(field)? {
            return self.writer.write_str(value);
        }
        // `Debug` of a str, without its per-character escaping machinery
        // when nothing needs escaping (the usual case).
        if value
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
        {
            self.writer.write_char('"')?;
            self.writer.write_str(value)?;
            self.writer.write_char('"')
        } else {
            write!(self.writer, "{value:?}")
        }
    }

    fn debug_value(&mut self, field: &Field, value: &dyn fmt::Debug) -> fmt::Result {
        self.start(field)?;
        write!(self.writer, "{value:?}")
    }
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
fn write_timestamp(writer: &mut Writer<'_>) -> fmt::Result {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let unix = now.as_secs();
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.unix != unix {
            cached.text.clear();
            let at = i64::try_from(unix)
                .ok()
                .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            write!(
                cached.text,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            )?;
            cached.unix = unix;
        }
        writer.write_str(&cached.text)
    })?;
    let micros = now.subsec_micros();
    let mut digits = [b'.', b'0', b'0', b'0', b'0', b'0', b'0', b'Z'];
    let mut rest = micros;
    for slot in digits[1..7].iter_mut().rev() {
        // `rest % 10` is a single digit.
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    // Only ASCII digits, '.' and 'Z' were written.
    writer.write_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?)
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
        let sink = Sink::default();
        let builder = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(sink.clone());
        if lean {
            let subscriber = builder
                .event_format(AuditFormat)
                .fmt_fields(AuditFields)
                .finish();
            tracing::subscriber::with_default(subscriber, f);
        } else {
            tracing::subscriber::with_default(builder.finish(), f);
        }
        let out = sink.0.lock().unwrap().clone();
        String::from_utf8(out).unwrap()
    }

    fn events() {
        let span = tracing::info_span!("oauth", endpoint = "token", method = %"POST");
        let _entered = span.enter();
        tracing::info!(client = %"backup-job", grant_type = ?"client_credentials", outcome = "issued", "token request");
        tracing::warn!(
            user = "a\"b\nsigned in user=alice",
            n = 3,
            ok = true,
            "odd \"values\""
        );
        tracing::error!(r#type = "x", "é and \u{202e}");
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
        assert_eq!(lean.lines().count(), 3);
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
