//! The command line shared by every PhotoBook provider binary (DEMO-CONTRACT.md, "Processes").

use std::fmt;
use std::net::SocketAddr;

use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches, Parser};
use url::Url;

use crate::tokens::AccessTokens;

/// PhotoBook: the photo-sharing provider of the Tessera demo.
///
/// An OAuth 2 authorization server (login and consent pages, token,
/// revocation and introspection endpoints, RFC 8414 metadata) and the
/// resource server of `GET /api/photos`. Users, clients and photos are seeded
/// (see DEMO-CONTRACT.md).
#[derive(Debug, Clone, Parser)]
#[command(name = "photo-provider", version, long_about = None)]
pub struct Args {
    /// Address to listen on (IP:PORT).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,

    /// Issuer identifier: the `iss` of everything issued, and the base URL of
    /// every endpoint in the metadata. An http(s) URL without query or
    /// fragment; a trailing slash is dropped [default: http://ADDR, ADDR being the --listen address].
    #[arg(long, value_name = "URL", value_parser = parse_issuer)]
    pub issuer: Option<Issuer>,

    /// Where clients, grants and tokens are kept: `memory` (in process, gone
    /// on restart), `redis://HOST:PORT[/DB]` or
    /// `postgres://USER:PASS@HOST:PORT/DB` (shared by several instances; the
    /// demo clients are written to it only when it has none; PostgreSQL keeps
    /// its tables in the schema `tessera`, created on first start).
    #[arg(long, value_name = "STORE", default_value = "memory", value_parser = parse_store)]
    pub store: StoreSpec,

    /// The access tokens issued: `opaque` handles only this provider's store
    /// resolves, or `jwt`: RFC 9068 JWTs (`typ: at+jwt`; ES256, or the
    /// algorithm of `--signing-key`) signed by the key published at
    /// `jwks_uri` (published in both modes).
    /// Revocation and introspection work in both modes.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = AccessTokens::Opaque)]
    pub access_tokens: AccessTokens,

    /// The PEM file (PKCS#8 P-256, Ed25519 or RSA of 2048 to 4096 bits for
    /// RS256, e.g. from `openssl genpkey -algorithm ed25519` or `-algorithm
    /// rsa`) of the key that signs JWT access tokens
    /// (`--access-tokens jwt`) and is published at `jwks_uri`; instances
    /// sharing a store must share it [default: a P-256 key generated at
    /// start].
    #[arg(long, value_name = "FILE", value_parser = crate::tokens::parse_signing_key)]
    pub signing_key: Option<crate::tokens::SigningKeyFile>,

    /// Accept client ID metadata documents
    /// (draft-ietf-oauth-client-id-metadata-document): a `client_id` that
    /// is an https URL names the client described by the JSON document at
    /// that URL, fetched (special-use addresses refused, 5 KiB, 5 s, no
    /// redirects) and cached; the metadata then says
    /// `client_id_metadata_document_supported` [default: off].
    #[arg(long)]
    pub client_metadata_documents: bool,

    /// With --client-metadata-documents: also fetch documents over plain
    /// http and from loopback addresses. DANGEROUS: lets anyone make the
    /// provider call services on this machine; for tests only [default: off].
    #[arg(long, requires = "client_metadata_documents")]
    pub dangerous_client_metadata_documents_over_loopback_http: bool,

    /// Accept JWT bearer assertions (RFC 7523 §2.1) of ISSUER signed by a
    /// key of the JWK Set in JWKS_FILE, for the demo user named by `sub`;
    /// clients may then register for the grant type
    /// `urn:ietf:params:oauth:grant-type:jwt-bearer`. Repeatable [default:
    /// the grant is off].
    #[arg(long, value_name = "ISSUER=JWKS_FILE", value_parser = crate::assertions::parse_trusted_issuer)]
    pub trust_assertion_issuer: Vec<crate::assertions::TrustedAssertionIssuer>,
}

impl Args {
    /// Parses the process arguments under the binary name `name` (so
    /// `--help` and errors name the right program).
    pub fn try_parse_named(name: &'static str) -> Result<Self, clap::Error> {
        Self::try_parse_named_from(name, std::env::args_os())
    }

    /// Parses `args` (the first one being the program) under the binary name `name`.
    pub fn try_parse_named_from<I, T>(name: &'static str, args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut command = Self::command().name(name).bin_name(name);
        let matches = command.try_get_matches_from_mut(args)?;
        let args = Self::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
        // One key set per issuer: a second one for the same issuer would
        // be silently ignored or silently merged.
        let mut issuers = std::collections::BTreeSet::new();
        if let Some(twice) = args
            .trust_assertion_issuer
            .iter()
            .find(|t| !issuers.insert(t.issuer.as_str()))
        {
            return Err(command.error(
                ErrorKind::ArgumentConflict,
                format!(
                    "--trust-assertion-issuer names {} twice: one JWK Set per issuer",
                    twice.issuer
                ),
            ));
        }
        Ok(args)
    }

    /// The issuer: `--issuer`, or `http://` + the address actually listened
    /// on (`listening`, which differs from `--listen` when its port is 0),
    /// in normal form as `--issuer` must be: `http://127.0.0.1` for port
    /// 80, `[::ffff:7f00:1]` for an IPv4-mapped address. The resources
    /// below it (`{issuer}/api`, `{issuer}/mcp`) need that form.
    pub fn issuer_for(&self, listening: SocketAddr) -> String {
        match &self.issuer {
            Some(issuer) => issuer.as_str().to_owned(),
            None => {
                let derived = format!("http://{listening}");
                match Url::parse(&derived) {
                    Ok(url) => url.as_str().trim_end_matches('/').to_owned(),
                    Err(_) => derived,
                }
            }
        }
    }
}

/// A validated issuer identifier: an `http` or `https` URL with a host, no
/// user info, query or fragment, and no trailing slash (RFC 8414 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer(String);

impl Issuer {
    /// The issuer's text, e.g. `http://127.0.0.1:9000`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Validates `--issuer`.
pub fn parse_issuer(text: &str) -> Result<Issuer, String> {
    let url = Url::parse(text).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the issuer must be an http:// or https:// URL".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the issuer URL needs a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the issuer URL must not contain user info".into());
    }
    if url.query().is_some() || url.fragment().is_some() || text.contains(['?', '#']) {
        return Err("the issuer URL must not have a query or fragment".into());
    }
    let trimmed = text.strip_suffix('/').unwrap_or(text);
    // The issuer is compared as a string (RFC 8414 §3.3, RFC 9207 §2.4):
    // only its normal form, as the URL parser writes it, so that clients
    // and this server spell it alike (no `HTTP://`, `:040020`, `0x7f.1`,
    // spaces, dot segments).
    let normal = url.as_str();
    if normal.strip_suffix('/').unwrap_or(normal) != trimmed {
        return Err(format!(
            "the issuer must be written in normal form: {}",
            normal.strip_suffix('/').unwrap_or(normal)
        ));
    }
    // Endpoint paths are built below it: plain segments only.
    let path = url.path();
    let plain = path
        .strip_suffix('/')
        .unwrap_or(path)
        .split('/')
        .skip(1)
        .all(|segment| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        });
    if !plain {
        return Err(
            "the issuer's path may hold only letters, digits and - . _ ~ between single slashes"
                .into(),
        );
    }
    Ok(Issuer(trimmed.to_owned()))
}

/// Files named by flags (keys, key sets) are small: a larger one is not
/// what was meant (`/dev/zero` would otherwise be read until memory runs
/// out).
pub const MAX_FLAG_FILE_BYTES: u64 = 1024 * 1024;

/// Reads a file named by a flag, at most [`MAX_FLAG_FILE_BYTES`].
pub fn read_flag_file(path: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_FLAG_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {path}: {e}"))?;
    if bytes.len() as u64 > MAX_FLAG_FILE_BYTES {
        return Err(format!("{path}: larger than {MAX_FLAG_FILE_BYTES} bytes"));
    }
    Ok(bytes)
}

/// Where the provider keeps its state (`--store`).
#[derive(Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// In process memory.
    Memory,
    /// A Redis server, by URL (`redis://HOST:PORT[/DB]`).
    Redis(String),
    /// A PostgreSQL database, by URL (`postgres://USER:PASS@HOST:PORT/DB`).
    Postgres(String),
}

impl fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreSpec({self})")
    }
}

impl fmt::Display for StoreSpec {
    /// The store for logs: a password in a Redis or PostgreSQL URL is
    /// masked (in the user info, or a PostgreSQL `password=` parameter).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("memory"),
            Self::Redis(url) | Self::Postgres(url) => f.write_str(&masked(url)),
        }
    }
}

/// A store URL with any password replaced by `****`.
fn masked(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url) else {
        // Validated URLs parse; anything else is not echoed.
        return "(invalid URL)".to_owned();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("****"));
    }
    if parsed
        .query_pairs()
        .any(|(k, _)| k.eq_ignore_ascii_case("password"))
    {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k.eq_ignore_ascii_case("password") {
                    "****".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// What `--store` accepts, for error messages.
const STORE_FORMS: &str =
    "`memory`, `redis://HOST:PORT[/DB]` or `postgres://USER:PASS@HOST:PORT/DB`";

/// Validates `--store`.
pub fn parse_store(text: &str) -> Result<StoreSpec, String> {
    if text == "memory" {
        return Ok(StoreSpec::Memory);
    }
    let url = Url::parse(text).map_err(|_| format!("expected {STORE_FORMS}"))?;
    match url.scheme() {
        "redis" => {}
        "postgres" | "postgresql" => return parse_postgres(text, &url),
        other => {
            return Err(format!(
                "unknown store scheme `{other}`: expected {STORE_FORMS}"
            ));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the Redis URL needs a host: redis://HOST:PORT[/DB]".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the Redis URL must not have a query or fragment".into());
    }
    let db = url.path().trim_start_matches('/');
    if !db.is_empty() && db.parse::<u16>().is_err() {
        return Err(format!(
            "the Redis database must be a number, as in redis://HOST:PORT/0 (got `{db}`)"
        ));
    }
    Ok(StoreSpec::Redis(text.to_owned()))
}

/// Validates a `postgres://USER:PASS@HOST:PORT/DB` store (query parameters
/// such as `?sslmode=disable` pass through to the driver).
fn parse_postgres(text: &str, url: &Url) -> Result<StoreSpec, String> {
    const FORM: &str = "postgres://USER:PASS@HOST:PORT/DB";
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("the PostgreSQL URL needs a host: {FORM}"));
    }
    if url.fragment().is_some() {
        return Err("the PostgreSQL URL must not have a fragment".into());
    }
    let db = url.path().trim_start_matches('/');
    if db.is_empty() || db.contains('/') {
        return Err(format!(
            "the PostgreSQL URL needs one database name as its path: {FORM}"
        ));
    }
    Ok(StoreSpec::Postgres(text.to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_named_from(
            "photo-provider",
            std::iter::once("photo-provider").chain(args.iter().copied()),
        )
    }

    #[test]
    fn client_metadata_documents_are_off_and_the_dangerous_flag_needs_them() {
        let args = parse(&[]).unwrap();
        assert!(!args.client_metadata_documents);
        assert!(!args.dangerous_client_metadata_documents_over_loopback_http);
        let on = parse(&["--client-metadata-documents"]).unwrap();
        assert!(on.client_metadata_documents);
        // The dangerous switch alone is refused: it only loosens the feature.
        assert!(parse(&["--dangerous-client-metadata-documents-over-loopback-http"]).is_err());
        let both = parse(&[
            "--client-metadata-documents",
            "--dangerous-client-metadata-documents-over-loopback-http",
        ])
        .unwrap();
        assert!(both.dangerous_client_metadata_documents_over_loopback_http);
    }

    #[test]
    fn defaults_follow_the_contract() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(args.issuer_for(args.listen), "http://127.0.0.1:9000");
        assert_eq!(args.store, StoreSpec::Memory);
    }

    /// The derived issuer is in normal form, as `--issuer` must be: the
    /// demo's resources are named below it.
    #[test]
    fn the_derived_issuer_is_in_normal_form() {
        let args = parse(&[]).unwrap();
        for (listening, issuer) in [
            ("127.0.0.1:80", "http://127.0.0.1"),
            ("[::ffff:127.0.0.1]:9000", "http://[::ffff:7f00:1]:9000"),
            ("[::1]:9000", "http://[::1]:9000"),
        ] {
            let issuer_for = args.issuer_for(listening.parse().unwrap());
            assert_eq!(issuer_for, issuer);
            assert_eq!(parse_issuer(&issuer_for).unwrap().as_str(), issuer);
        }
    }

    #[test]
    fn issuer_is_validated_and_trimmed() {
        assert_eq!(
            parse_issuer("https://photos.example/").unwrap().as_str(),
            "https://photos.example"
        );
        assert_eq!(
            parse_issuer("http://127.0.0.1:9000").unwrap().as_str(),
            "http://127.0.0.1:9000"
        );
        for bad in [
            "photos.example",
            "ftp://x",
            "http://x?a=b",
            "http://x#f",
            "http://u:p@x",
            "::nonsense",
            // Not in normal form: compared as strings, they would differ
            // from what clients derive.
            " http://127.0.0.1:9000",
            "http://127.0.0.1:9000\n",
            "http://127.0.0.1:90\t00",
            "HTTP://127.0.0.1:9000",
            "http://127.0.0.1:09000",
            "http://0x7f.1:9000",
            "http://x/a/..",
            "http://x/./",
            // Paths the endpoints cannot be built under.
            "http://x/%zz",
            "http://x/a%20b",
            "http://x//a",
        ] {
            assert!(parse_issuer(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_issuer("https://id.example/tenant-1/")
                .unwrap()
                .as_str(),
            "https://id.example/tenant-1"
        );
        let args = parse(&["--issuer", "https://id.example", "--listen", "0.0.0.0:1"]).unwrap();
        assert_eq!(args.issuer_for(args.listen), "https://id.example");
    }

    #[test]
    fn store_is_validated() {
        assert_eq!(parse_store("memory").unwrap(), StoreSpec::Memory);
        assert_eq!(
            parse_store("redis://127.0.0.1:6379/2").unwrap(),
            StoreSpec::Redis("redis://127.0.0.1:6379/2".into())
        );
        assert!(parse_store("redis://127.0.0.1:6379").is_ok());
        assert_eq!(
            parse_store("postgres://photos:pw@127.0.0.1:5432/photobook").unwrap(),
            StoreSpec::Postgres("postgres://photos:pw@127.0.0.1:5432/photobook".into())
        );
        assert!(parse_store("postgresql://u@db.internal/photos?sslmode=disable").is_ok());
        for bad in [
            "mem",
            "mysql://u@h/db",
            "postgres://x",
            "postgres://x/",
            "postgres://u@h:1/a/b",
            "postgres:///db",
            "postgres://h/db#f",
            "redis://",
            "redis://h:1/x",
            "redis://h:1/0?x=1",
        ] {
            assert!(parse_store(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redis_password_is_masked() {
        let spec = parse_store("redis://:hunter2@127.0.0.1:6379").unwrap();
        assert!(!spec.to_string().contains("hunter2"));
        assert!(!format!("{spec:?}").contains("hunter2"));
    }

    #[test]
    fn postgres_password_is_masked() {
        for url in [
            "postgres://photos:hunter2@127.0.0.1:5432/photobook",
            "postgres://photos@127.0.0.1/photobook?password=hunter2&sslmode=disable",
        ] {
            let spec = parse_store(url).unwrap();
            let shown = spec.to_string();
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(
                shown.contains("photos@127.0.0.1") || shown.contains("photos:****@"),
                "{shown}"
            );
            assert!(!format!("{spec:?}").contains("hunter2"));
        }
    }

    /// A file flag that names something endless (`/dev/zero`) or huge is
    /// refused after a bounded read, not read until memory runs out; a
    /// trusted issuer's JWK Set must hold public keys, one set per issuer.
    #[test]
    fn flag_files_are_bounded_and_checked() {
        let e = read_flag_file("/dev/zero").unwrap_err();
        assert!(e.contains("larger than"), "{e}");
        for flag in ["--signing-key", "--trust-assertion-issuer"] {
            let value = if flag == "--signing-key" {
                "/dev/zero".to_owned()
            } else {
                "https://idp.example=/dev/zero".to_owned()
            };
            let e = parse(&[flag, &value]).unwrap_err().to_string();
            assert!(e.contains("larger than"), "{flag}: {e}");
        }
        let dir = std::env::temp_dir().join(format!("photobook-flags-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str, json: &str| {
            let path = dir.join(name);
            std::fs::write(&path, json).unwrap();
            format!("https://idp.example={}", path.display())
        };
        let empty = file("empty.json", r#"{"keys":[]}"#);
        let e = parse(&["--trust-assertion-issuer", &empty])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no key"), "{e}");
        let private = file(
            "private.json",
            r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}"#,
        );
        let e = parse(&["--trust-assertion-issuer", &private])
            .unwrap_err()
            .to_string();
        assert!(e.contains("private key"), "{e}");
        let good = file(
            "good.json",
            r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#,
        );
        assert!(parse(&["--trust-assertion-issuer", &good]).is_ok());
        let e = parse(&[
            "--trust-assertion-issuer",
            &good,
            "--trust-assertion-issuer",
            &good,
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("twice"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(parse(&["--listen", "notanaddr"]).is_err());
        assert!(parse(&["--store", "nope"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }

    #[test]
    fn help_names_the_program() {
        let help = Args::command()
            .name("photo-provider-rocket")
            .bin_name("photo-provider-rocket")
            .render_help()
            .to_string();
        assert!(help.contains("photo-provider-rocket"));
        for flag in [
            "--listen",
            "--issuer",
            "--store",
            "redis://HOST:PORT[/DB]",
            "postgres://USER:PASS@HOST:PORT/DB",
            "--access-tokens",
            "--signing-key",
        ] {
            assert!(help.contains(flag), "{flag}");
        }
    }

    #[test]
    fn access_tokens_are_opaque_unless_jwt_is_asked_for() {
        assert_eq!(parse(&[]).unwrap().access_tokens, AccessTokens::Opaque);
        let jwt = parse(&["--access-tokens", "jwt"]).unwrap();
        assert_eq!(jwt.access_tokens, AccessTokens::Jwt);
        assert!(parse(&["--access-tokens", "JWT!"]).is_err());
        // A missing or unusable key file is a command-line error.
        assert!(parse(&["--signing-key", "/nonexistent/key.pem"]).is_err());
        let dir = std::env::temp_dir().join(format!("photobook-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.pem");
        std::fs::write(&bad, "not a key").unwrap();
        assert!(parse(&["--signing-key", bad.to_str().unwrap()]).is_err());
        // RFC 8410 §10.3's Ed25519 key.
        let good = dir.join("ed25519.pem");
        std::fs::write(
            &good,
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let args = parse(&[
            "--access-tokens",
            "jwt",
            "--signing-key",
            good.to_str().unwrap(),
        ])
        .unwrap();
        let keys = crate::tokens::signing_keys(&args);
        use tessera::KeySet as _;
        let now = time::OffsetDateTime::now_utc();
        assert_eq!(
            keys.signing_key(now).algorithm(),
            tessera::JwsAlgorithm::EdDsa
        );
        // An RSA key signs RS256 (RFC 9068 §2.1); one under 2048 bits is a
        // command-line error.
        let rsa = dir.join("rsa.pem");
        std::fs::write(&rsa, include_str!("../../../core/testdata/rsa-2048.pem")).unwrap();
        let args = parse(&["--signing-key", rsa.to_str().unwrap()]).unwrap();
        assert_eq!(
            crate::tokens::signing_keys(&args)
                .signing_key(now)
                .algorithm(),
            tessera::JwsAlgorithm::Rs256
        );
        let short = dir.join("rsa-1024.pem");
        std::fs::write(&short, include_str!("../../../core/testdata/rsa-1024.pem")).unwrap();
        assert!(parse(&["--signing-key", short.to_str().unwrap()]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
