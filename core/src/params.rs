//! Request parameters, parsed once with RFC 6749's rules.
//!
//! - A parameter sent more than once is `invalid_request` (RFC 6749 §3.1, §3.2),
//!   except `resource`, which RFC 8707 §2 lets a client repeat (see
//!   [`Params::get_all`]; Tessera answers several with `invalid_target`).
//! - A parameter sent without a value is treated as omitted (§3.1, §3.2).
//! - Values are `application/x-www-form-urlencoded` (Appendix B) and must
//!   be UTF-8 once decoded; anything else is `invalid_request` (§5.2), never
//!   decoded lossily into a different value.
//! - No name or value is longer than [`MAX_PARAMETER_BYTES`] (2 KiB): what an
//!   unauthenticated caller sends is echoed or kept, so its size is bounded.

use std::ops::Range;

use crate::error::{OAuthError, Reason};

/// The longest parameter name or value accepted, in bytes once decoded
/// (DEMO-CONTRACT "Limits against floods"; RFC 6749 leaves it to the server).
pub const MAX_PARAMETER_BYTES: usize = 2048;

/// The parameters an extension lets a client send more than once: RFC 8707
/// §2 `resource`. Every other name is refused when repeated (RFC 6749 §3.1).
const REPEATABLE: [&str; 1] = ["resource"];

/// What is wrong with a parameter that was left out of the parsed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flaw {
    /// Longer than [`MAX_PARAMETER_BYTES`].
    TooLong,
    /// Not UTF-8 once percent-decoded.
    NotUtf8,
}

impl Flaw {
    pub(crate) fn error(self, name: &str) -> OAuthError {
        let name = printable(name);
        let text = match self {
            Self::TooLong => {
                format!("parameter `{name}` is longer than {MAX_PARAMETER_BYTES} bytes")
            }
            Self::NotUtf8 => format!("parameter `{name}` is not UTF-8 once decoded"),
        };
        OAuthError::invalid_request(text).with_reason(Reason::MalformedParameter)
    }
}

/// What a lenient parse found wrong: the names sent more than once (their
/// first value kept) and the parameters left out for a [`Flaw`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Flaws {
    /// Names sent more than once, each once, in order.
    pub(crate) repeated: Vec<String>,
    /// Names of parameters dropped for a flaw, with it.
    pub(crate) malformed: Vec<(String, Flaw)>,
}

impl Flaws {
    /// `invalid_request` for the first parameter that `reads` names and
    /// that came more than once, else for the first one malformed; `Ok` when
    /// every flaw is in a parameter the endpoint does not read, which it
    /// "MUST ignore" (RFC 6749 §3.1, §3.2), repeated or not.
    pub(crate) fn refuse_read(&self, reads: impl Fn(&str) -> bool) -> Result<(), OAuthError> {
        if let Some(name) = self.repeated.iter().find(|n| reads(n)) {
            return Err(repeated(name));
        }
        match self.malformed.iter().find(|(n, _)| reads(n)) {
            Some((name, flaw)) => Err(flaw.error(name)),
            None => Ok(()),
        }
    }

    /// [`refuse_read`](Self::refuse_read), and then `invalid_request` for a
    /// value longer than [`MAX_PARAMETER_BYTES`] whoever reads it: the size
    /// bound is the server's own limit on what it is sent (DEMO-CONTRACT:
    /// "every other parameter value" at most 2 KiB), not a parameter's
    /// meaning, so it holds for unrecognized parameters too.
    pub(crate) fn refuse(&self, reads: impl Fn(&str) -> bool) -> Result<(), OAuthError> {
        self.refuse_read(reads)?;
        match self.malformed.iter().find(|(_, f)| *f == Flaw::TooLong) {
            Some((name, flaw)) => Err(flaw.error(name)),
            None => Ok(()),
        }
    }
}

/// The parameters of one request: each name at most once, empty values dropped.
///
/// Decoded names and values live in one buffer, so parsing a typical token
/// request costs two allocations whatever its number of parameters.
#[derive(Clone, Default)]
pub struct Params {
    text: String,
    /// (name, value) ranges into `text`, in the order sent.
    pairs: Vec<(Range<usize>, Range<usize>)>,
}

impl PartialEq for Params {
    /// Equal when the same pairs were kept, in the same order (the buffer
    /// may also hold the text of dropped empty values).
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Params {}

impl std::fmt::Debug for Params {
    /// Values may be secrets (codes, tokens, client secrets), so only names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter().map(|(k, _)| k)).finish()
    }
}

impl Params {
    /// Parses an `application/x-www-form-urlencoded` string (a query string or a form body).
    ///
    /// Fails with `invalid_request` naming the first repeated parameter.
    pub fn parse(encoded: &str) -> Result<Self, OAuthError> {
        let (params, malformed) = Self::decode(encoded);
        if let Some((name, flaw)) = malformed.first() {
            return Err(flaw.error(name));
        }
        params.unique()
    }

    /// Builds parameters from already-decoded pairs, applying the same rules as [`Params::parse`].
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self, OAuthError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut params = Self::default();
        for (k, v) in pairs {
            let (k, v) = (k.as_ref(), v.as_ref());
            if k.len().max(v.len()) > MAX_PARAMETER_BYTES {
                return Err(Flaw::TooLong.error(k));
            }
            params.push(k, v);
        }
        params.unique()
    }

    /// The parameters if no name repeats (empty values dropped after the
    /// check, so that `a=&a=1` is still a repeat); else `invalid_request`
    /// naming the first repeat.
    fn unique(mut self) -> Result<Self, OAuthError> {
        if let Some(&(i, _)) = self.repeats().first() {
            let name = self.pairs.get(i).map_or("", |(k, _)| self.name(k));
            return Err(repeated(name));
        }
        self.drop_empty();
        Ok(self)
    }

    /// Parses like [`Params::parse`] but keeps the first value of a repeated
    /// parameter and reports the repeated names. The authorization endpoint
    /// needs this: a repeated `client_id` or `redirect_uri` must not lead to a
    /// redirect, while other repeats are reported *to* the verified redirect URI.
    pub(crate) fn parse_reporting_flaws(encoded: &str) -> (Self, Flaws) {
        let (mut params, malformed) = Self::decode(encoded);
        let repeats = params.repeats();
        let names: Vec<String> = repeats
            .iter()
            .filter(|(_, first)| *first)
            .map(|&(i, _)| {
                params
                    .pairs
                    .get(i)
                    .map_or("", |(k, _)| params.name(k))
                    .to_owned()
            })
            .collect();
        // Keep each name's first occurrence: drop exactly the repeats.
        let mut drop = repeats.iter().map(|&(i, _)| i).peekable();
        let mut index = 0;
        params.pairs.retain(|_| {
            let repeat = drop.next_if_eq(&index).is_some();
            index += 1;
            !repeat
        });
        params.drop_empty();
        (
            params,
            Flaws {
                repeated: names,
                malformed,
            },
        )
    }

    /// Decodes every pair into one buffer. The input is copied into it
    /// whole, so a name or value without escapes (the usual one) is a range
    /// of that copy, copied nowhere else; an escaped one is decoded after
    /// it. Decoding never lengthens the text (`%XX` is three bytes for one,
    /// `+` one for one; the input is already UTF-8), so the buffer holds at
    /// most twice the input.
    fn decode(encoded: &str) -> (Self, Vec<(String, Flaw)>) {
        let mut malformed = Vec::new();
        let mut params = Self {
            text: String::with_capacity(encoded.len().saturating_mul(2)),
            pairs: Vec::with_capacity(8),
        };
        params.text.push_str(encoded);
        // Appendix B: `&`-separated `name=value` pairs (empty pieces skipped,
        // a missing `=` meaning an empty value), `+` for space, then
        // percent-decoding, invalid UTF-8 replaced: `form_urlencoded::parse`'s
        // rules. One vectorised scan (`memchr3`) finds the bytes that matter
        // between pieces, `&`, `+` and `%`: each piece's end, and whether it
        // holds escapes at all; a piece's `=` is then looked for in it
        // (a short name), which tells the name's escapes from the value's.
        let mut scratch = Vec::new();
        let bytes = encoded.as_bytes();
        let mut start = 0;
        // The first and last escape (`+`, `%`) of the piece being scanned.
        let mut escapes: Option<(usize, usize)> = None;
        for i in memchr::memchr3_iter(b'&', b'+', b'%', bytes).chain([bytes.len()]) {
            // The end of the input ends the last piece, as `&` does.
            if bytes.get(i).is_some_and(|&b| b != b'&') {
                escapes = Some(escapes.map_or((i, i), |(first, _)| (first, i)));
                continue;
            }
            if let Some(piece) = bytes.get(start..i).filter(|p| !p.is_empty()) {
                let equals = memchr::memchr(b'=', piece).map(|e| start + e);
                let (name_escaped, value_escaped) = match (escapes, equals) {
                    (None, _) => (false, false),
                    (Some(_), None) => (true, false),
                    (Some((first, last)), Some(e)) => (first < e, last > e),
                };
                let piece = Piece {
                    start,
                    equals,
                    name_escaped,
                    value_escaped,
                };
                params.add_piece(encoded, &piece, i, &mut scratch, &mut malformed);
            }
            start = i + 1;
            escapes = None;
        }
        (params, malformed)
    }

    /// Adds the piece `piece.start..end` of `encoded` (the text's copy of
    /// which starts the buffer), decoding its name and value only if they
    /// hold escapes; a piece with a [`Flaw`] is reported by name, not kept.
    fn add_piece(
        &mut self,
        encoded: &str,
        piece: &Piece,
        end: usize,
        scratch: &mut Vec<u8>,
        malformed: &mut Vec<(String, Flaw)>,
    ) {
        let (name, value) = match piece.equals {
            Some(i) => (piece.start..i, i + 1..end),
            None => (piece.start..end, end..end),
        };
        let mark = self.text.len();
        let mut utf8 = true;
        let name = match piece.name_escaped {
            false => name,
            true => self.decode_part(encoded, name, scratch, &mut utf8),
        };
        let value = match piece.value_escaped {
            false => value,
            true => self.decode_part(encoded, value, scratch, &mut utf8),
        };
        let flaw = if !utf8 {
            Some(Flaw::NotUtf8)
        } else if name.len().max(value.len()) > MAX_PARAMETER_BYTES {
            Some(Flaw::TooLong)
        } else {
            None
        };
        match flaw {
            None => self.pairs.push((name, value)),
            Some(flaw) => {
                // Reported by name (bounded, for the error), never kept.
                let name: String = self.name(&name).chars().take(64).collect();
                malformed.push((name, flaw));
                self.text.truncate(mark);
            }
        }
    }

    /// Decodes `encoded[range]` onto the end of the text: its range there.
    /// `utf8` turns `false` if it is not UTF-8 once decoded.
    fn decode_part(
        &mut self,
        encoded: &str,
        range: Range<usize>,
        scratch: &mut Vec<u8>,
        utf8: &mut bool,
    ) -> Range<usize> {
        let at = self.text.len();
        // `&`, `=`, `+` and `%` are ASCII, so these are char boundaries.
        let part = encoded.get(range).unwrap_or_default();
        *utf8 &= form_decode_into(part, &mut self.text, scratch);
        at..self.text.len()
    }

    fn push(&mut self, name: &str, value: &str) {
        let start = self.text.len();
        self.text.push_str(name);
        let middle = self.text.len();
        self.text.push_str(value);
        self.pairs.push((start..middle, middle..self.text.len()));
    }

    fn name(&self, range: &Range<usize>) -> &str {
        self.text.get(range.clone()).unwrap_or_default()
    }

    /// The pairs whose name was sent earlier, by ascending index, each
    /// marked `true` when it is its name's first repeat. Pairwise for a
    /// usual request (no allocation unless a name repeats), by sorting for a
    /// long one, so thousands of parameters stay cheap.
    fn repeats(&self) -> Vec<(usize, bool)> {
        if self.pairs.len() <= 16 {
            return (0..self.pairs.len())
                .filter_map(|i| {
                    let name = self.name(&self.pairs[i].0);
                    if REPEATABLE.contains(&name) {
                        return None;
                    }
                    // Names of another length are told apart without
                    // comparing their bytes.
                    let bytes = self.text.as_bytes();
                    let earlier = self.pairs[..i]
                        .iter()
                        .filter(|(k, _)| {
                            k.len() == name.len() && bytes.get(k.clone()) == Some(name.as_bytes())
                        })
                        .count();
                    (earlier > 0).then_some((i, earlier == 1))
                })
                .collect();
        }
        let mut names: Vec<(&str, usize)> = self
            .pairs
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (self.name(k), i))
            .collect();
        names.sort_unstable();
        let mut repeats = Vec::new();
        for (at, &(name, i)) in names.iter().enumerate().skip(1) {
            if names[at - 1].0 == name && !REPEATABLE.contains(&name) {
                let first = at < 2 || names[at - 2].0 != name;
                repeats.push((i, first));
            }
        }
        repeats.sort_unstable();
        repeats
    }

    /// RFC 6749 §3.1: a parameter sent without a value is treated as omitted.
    /// Done after the repeat check, so that `a=&a=1` is still a repeat.
    fn drop_empty(&mut self) {
        self.pairs.retain(|(_, v)| !v.is_empty());
    }

    /// The value of a parameter, if sent with a non-empty value.
    pub fn get(&self, name: &str) -> Option<&str> {
        // Names are compared as bytes; only the match's value is sliced.
        let bytes = self.text.as_bytes();
        self.pairs
            .iter()
            .find(|(k, _)| bytes.get(k.clone()) == Some(name.as_bytes()))
            .map(|(_, v)| self.name(v))
    }

    /// Every non-empty value of a parameter, in the order sent: for the one
    /// name that may repeat, `resource` (RFC 8707 §2); any other name has at
    /// most one.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let bytes = self.text.as_bytes();
        self.pairs
            .iter()
            .filter(move |(k, _)| bytes.get(k.clone()) == Some(name.as_bytes()))
            .map(|(_, v)| self.name(v))
    }

    /// The value of a required parameter, or `invalid_request` naming it.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| {
            OAuthError::invalid_request(format!("missing parameter `{name}`"))
                .with_reason(crate::error::Reason::MissingParameter)
        })
    }

    /// Whether the parameter was sent with a value.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Every parameter name and value, in the order sent.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (self.name(k), self.name(v)))
    }
}

/// A piece of a form: where it starts, its first `=`, and what it holds.
#[derive(Debug)]
struct Piece {
    start: usize,
    /// The first `=`: the end of the name.
    equals: Option<usize>,
    /// Whether the name, and the value, hold a `+` or `%`: only those are
    /// decoded, the rest used as they are.
    name_escaped: bool,
    value_escaped: bool,
}

/// Appends the form-decoded `piece` to `out` (RFC 6749 Appendix B), using
/// `scratch` (reused across pieces) for the decoded bytes: `+` is a space,
/// `%XX` a byte, in one pass that copies the runs between them whole; then
/// the bytes are read as UTF-8. `false`, with U+FFFD for what is not UTF-8 appended, when
/// the decoded bytes are not UTF-8 (RFC 6749 Appendix B: such a value is
/// malformed; the caller drops it).
fn form_decode_into(piece: &str, out: &mut String, scratch: &mut Vec<u8>) -> bool {
    let bytes = piece.as_bytes();
    scratch.clear();
    scratch.reserve(bytes.len());
    // `+` is a space, `%` and two hex digits a byte, and a `%` without them
    // stays as it is (what `percent_encoding::percent_decode` does). Runs of
    // other bytes are copied whole.
    let mut rest = bytes;
    while let Some(at) = rest.iter().position(|&b| b == b'+' || b == b'%') {
        let (run, tail) = rest.split_at(at);
        scratch.extend_from_slice(run);
        match tail {
            [b'+', after @ ..] => {
                scratch.push(b' ');
                rest = after;
            }
            [b'%', h, l, after @ ..] if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                scratch.push(hex_value(*h) << 4 | hex_value(*l));
                rest = after;
            }
            [b, after @ ..] => {
                scratch.push(*b);
                rest = after;
            }
            [] => rest = tail,
        }
    }
    scratch.extend_from_slice(rest);
    match std::str::from_utf8(scratch) {
        Ok(text) => {
            out.push_str(text);
            true
        }
        Err(_) => {
            out.push_str(&String::from_utf8_lossy(scratch));
            false
        }
    }
}

/// The value of an ASCII hex digit (the caller has checked it is one).
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit.wrapping_sub(b'A').wrapping_add(10),
    }
}

/// `invalid_request` for a parameter sent more than once (RFC 6749 §3.1),
/// naming it in printable form.
pub(crate) fn repeated(name: &str) -> OAuthError {
    OAuthError::invalid_request(format!(
        "parameter `{}` was sent more than once",
        printable(name)
    ))
    .with_reason(Reason::RepeatedParameter)
}

/// Parameter names from the wire go into error descriptions; keep them short
/// and within the characters RFC 6749 §4.1.2.1 and §5.2 allow for
/// `error_description` (%x20-21 / %x23-5B / %x5D-7E): no quotes, no
/// backslash, no markup-breaking or bidirectional characters.
pub(crate) fn printable(name: &str) -> String {
    name.chars()
        .filter(|c| matches!(*c, ' '..='!' | '#'..='[' | ']'..='~'))
        .take(40)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn duplicate_parameter_is_invalid_request_rfc6749_3_1() {
        let err = Params::parse("a=1&b=2&a=3").err();
        assert_eq!(err.map(|e| e.code), Some(ErrorCode::InvalidRequest));
    }

    #[test]
    fn resource_may_repeat_rfc8707_2() {
        let p = Params::parse("resource=a&x=1&resource=b&resource=").unwrap();
        assert_eq!(p.get_all("resource").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(p.get_all("x").collect::<Vec<_>>(), ["1"]);
        let (p, flaws) = Params::parse_reporting_flaws("resource=a&resource=b");
        assert!(flaws.repeated.is_empty());
        assert_eq!(p.get_all("resource").count(), 2);
        // Also past the sorting path for long requests.
        let long: String = (0..20).map(|i| format!("p{i}=1&resource=r{i}&")).collect();
        let p = Params::parse(&long).unwrap();
        assert_eq!(p.get_all("resource").count(), 20);
        assert!(Params::parse(&format!("{long}p3=2")).is_err());
    }

    #[test]
    fn duplicate_even_when_empty_is_rejected() {
        assert!(Params::parse("a=&a=1").is_err());
    }

    #[test]
    fn empty_values_count_as_absent_rfc6749_3_1() {
        let p = Params::parse("scope=&state=xyz").unwrap_or_default();
        assert_eq!(p.get("scope"), None);
        assert!(p.require("scope").is_err());
        assert_eq!(p.get("state"), Some("xyz"));
    }

    #[test]
    fn decodes_form_encoding() {
        let p = Params::parse("redirect_uri=http%3A%2F%2Fx%2Fcb&scope=a+b").unwrap_or_default();
        assert_eq!(p.get("redirect_uri"), Some("http://x/cb"));
        assert_eq!(p.get("scope"), Some("a b"));
    }

    #[test]
    fn repeats_are_reported_once_in_order_and_the_first_value_kept() {
        let (p, flaws) = Params::parse_reporting_flaws("b=1&a=2&b=3&a=4&b=5&c=6");
        let dups = flaws.repeated;
        assert_eq!(dups, ["b", "a"]);
        assert_eq!(p.get("b"), Some("1"));
        assert_eq!(p.get("a"), Some("2"));
        assert_eq!(p.iter().count(), 3);
        let err = Params::parse("x=1&b=2&a=3&a=4&b=5").err();
        assert!(
            err.and_then(|e| e.description)
                .is_some_and(|d| d.contains("`a`"))
        );
    }

    #[test]
    fn many_parameters_stay_cheap() {
        let body: String = (0..20_000).map(|i| format!("p{i}=v&")).collect();
        let p = Params::parse(&body).unwrap_or_default();
        assert_eq!(p.get("p19999"), Some("v"));
        assert!(Params::parse(&format!("{body}p7=x")).is_err());
        // Past the pairwise path, repeats are reported and dropped the same way.
        let filler: String = (0..20).map(|i| format!("f{i}=v&")).collect();
        let (p, flaws) = Params::parse_reporting_flaws(&format!("{filler}b=1&a=2&b=3&a=4&b=5"));
        let dups = flaws.repeated;
        assert_eq!(dups, ["b", "a"]);
        assert_eq!(
            (p.get("b"), p.get("a"), p.iter().count()),
            (Some("1"), Some("2"), 22)
        );
        // Many repeats at once (a query of thousands of them) are dropped in
        // one pass, keeping every first value.
        let twice = format!("{body}{body}");
        let (p, flaws) = Params::parse_reporting_flaws(&twice);
        let dups = flaws.repeated;
        assert_eq!((dups.len(), p.iter().count()), (20_000, 20_000));
        assert_eq!(p.get("p0"), Some("v"));
    }

    #[test]
    fn from_pairs_applies_the_same_rules() {
        assert!(Params::from_pairs([("a", "1"), ("a", "")]).is_err());
        let p = Params::from_pairs([("a", ""), ("b", "2")]).unwrap_or_default();
        assert_eq!(p.get("a"), None);
        assert_eq!(p.get("b"), Some("2"));
    }

    /// `form_urlencoded`'s decoding, less the pairs that are not UTF-8 once
    /// decoded (which it would decode lossily and we refuse).
    fn reference(encoded: &str) -> Vec<(String, String)> {
        encoded
            .split('&')
            .filter(|piece| {
                let bytes: Vec<u8> =
                    percent_encoding::percent_decode_str(&piece.replace('+', " ")).collect();
                std::str::from_utf8(&bytes).is_ok()
            })
            .flat_map(|piece| url::form_urlencoded::parse(piece.as_bytes()))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn ours(encoded: &str) -> Vec<(String, String)> {
        Params::decode(encoded)
            .0
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn decoding_matches_form_urlencoded_appendix_b() {
        for s in [
            "",
            "&",
            "a",
            "a=",
            "=b",
            "a=b&&c=d&",
            "a=b=c",
            "a+b=c+d",
            "%41%2B=%2b+",
            "x=%",
            "x=%4",
            "x=%zz",
            "x=%FF%fe",
            "x=caf%C3%A9",
            "é=ü&%C3=1",
            "+=+&+",
        ] {
            assert_eq!(ours(s), reference(s), "{s:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn decoding_matches_form_urlencoded_on_any_text(s in "[a-c=&+% 0-9A-Fé]{0,40}") {
            proptest::prop_assert_eq!(ours(&s), reference(&s));
        }
    }

    proptest::proptest! {
        /// Long enough to cross many eight-byte words, with the four
        /// special bytes at every offset within them.
        #[test]
        fn decoding_matches_form_urlencoded_on_long_text(s in "[ab=&+%0-9A-Fé]{0,160}") {
            proptest::prop_assert_eq!(ours(&s), reference(&s));
        }

        /// Long runs without a special byte between sparse ones, so the
        /// vectorised scan's wide steps and their tails are crossed.
        #[test]
        fn decoding_matches_form_urlencoded_on_sparse_text(s in "([a-z0-9é]{0,70}[=&+%]{1,2}[0-9A-F]{0,2}){0,8}") {
            proptest::prop_assert_eq!(ours(&s), reference(&s));
        }

    }

    #[test]
    fn escaped_and_plain_parts_of_one_request_are_kept_apart() {
        let p = Params::parse(
            "response_type=code&redirect_uri=http%3A%2F%2F127.0.0.1%3A9001%2Fcallback&scope=photos.read%20profile&state=af0ifjsldkj&x%20y=1",
        )
        .unwrap();
        assert_eq!(p.get("response_type"), Some("code"));
        assert_eq!(
            p.get("redirect_uri"),
            Some("http://127.0.0.1:9001/callback")
        );
        assert_eq!(p.get("scope"), Some("photos.read profile"));
        assert_eq!(p.get("state"), Some("af0ifjsldkj"));
        assert_eq!(p.get("x y"), Some("1"));
        // A dropped escaped value leaves no trace in the values kept after it.
        let (p, flaws) = Params::parse_reporting_flaws("a=%FF%FE&b=%41&c=d");
        assert_eq!(flaws.malformed, [("a".to_owned(), Flaw::NotUtf8)]);
        assert_eq!(
            (p.get("a"), p.get("b"), p.get("c")),
            (None, Some("A"), Some("d"))
        );
    }

    #[test]
    fn debug_hides_values() {
        let p = Params::parse("client_secret=hunter2").unwrap_or_default();
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn values_over_2_kib_are_invalid_request() {
        let long = "x".repeat(MAX_PARAMETER_BYTES + 1);
        let e = Params::parse(&format!("state={long}&a=1")).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert_eq!(e.reason(), Reason::MalformedParameter);
        assert!(Params::parse(&format!("state={}", "x".repeat(MAX_PARAMETER_BYTES))).is_ok());
        // Escapes count once decoded: 2,048 `%41`s are 2,048 bytes.
        assert!(Params::parse(&format!("state={}", "%41".repeat(MAX_PARAMETER_BYTES))).is_ok());
        // Names too.
        assert!(Params::parse(&format!("{long}=1")).is_err());
        // The lenient parse drops the value and names it, so it is never echoed.
        let (p, flaws) = Params::parse_reporting_flaws(&format!("client_id=c&state={long}"));
        assert_eq!(p.get("state"), None);
        assert_eq!(p.get("client_id"), Some("c"));
        assert_eq!(flaws.malformed, [("state".to_owned(), Flaw::TooLong)]);
    }

    #[test]
    fn values_that_are_not_utf8_are_invalid_request_rfc6749_appendix_b() {
        // Once lossily decoded, `client_credentials%FF` became another value.
        let e = Params::parse("grant_type=client_credentials%FF").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert!(e.description.is_some_and(|d| d.contains("grant_type")));
        assert!(Params::parse("resource=%FF").is_err());
        assert!(Params::parse("a%FF=1").is_err());
        // Valid multi-byte UTF-8 is fine.
        assert_eq!(Params::parse("n=%C3%A9").unwrap().get("n"), Some("\u{e9}"));
        let (p, flaws) = Params::parse_reporting_flaws("state=%FF&client_id=c");
        assert_eq!(p.get("state"), None);
        assert_eq!(flaws.malformed, [("state".to_owned(), Flaw::NotUtf8)]);
    }

    #[test]
    fn reflected_names_keep_only_printable_ascii_rfc6749_4_1_2_1() {
        let e = Params::parse("%22%3E%3Cscript%3E%E2%80%AE\\=1&%22%3E%3Cscript%3E%E2%80%AE\\=2")
            .unwrap_err();
        let d = e.description.unwrap();
        assert!(
            !d.contains('"') && !d.contains('\u{202e}') && !d.contains('\\'),
            "{d}"
        );
        assert!(
            d.chars()
                .all(|c| matches!(c, ' '..='!' | '#'..='[' | ']'..='~'))
        );
    }
}
