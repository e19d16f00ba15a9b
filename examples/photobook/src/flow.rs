//! The browser side of the authorization endpoint, framework-neutral: each
//! step takes what the request carried (query or form body, the session
//! cookie's value) and answers a [`tessera::HttpResponse`] that a web
//! framework only has to copy out (status, headers, body).
//!
//! | step | request | answer |
//! |---|---|---|
//! | [`Demo::authorize`] | `GET /authorize?…` | login page, consent page, 303 to the client, or error page |
//! | [`Demo::login`] | `POST /login` (`csrf_token`, `handle`, `username`, `password`) | consent page (or 303), or the login page again with an error |
//! | [`Demo::consent`] | `POST /consent` (`csrf_token`, `handle`, `decision=allow\|deny`) | 303 to the client with `code` or `error=access_denied` |
//!
//! Both forms need a CSRF token, and a handle that was shown to that same
//! browser (the login form's token is a MAC over the browser's cookie and
//! the handle; the consent form's handle is bound to the signed-in session
//! when its page is rendered, see [`crate::session`]); a handle from another
//! browser gets the same 400 "expired" page as an unknown one, and nothing is
//! resumed or decided.
//!
//! The login form is throttled per account (RFC 6749 §10.10): after 5 wrong
//! passwords in 15 minutes (the core's default [`tessera::MemoryRateLimiter`]
//! limit for [`Action::LoginFailure`]) the account answers `429` with
//! `Retry-After` and a page saying when to try again, without checking the
//! password, until the window ends. The key is the account name, trimmed and
//! lowercased, whether or not such an account exists (so the answers tell
//! nothing about which accounts exist).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, Weak};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tessera::{Action, Limited, Prompt, Subject};
use tessera::{AuthorizeOutcome, Decision, ErrorCode, HttpResponse, OAuthError};

use crate::Demo;
use crate::logsafe::escape;
use crate::pages::{ConsentPage, ErrorPage, LoginPage, display_name};
use crate::photos::{PHOTOS_READ, photos_for};
use crate::session::{LoginToken, Session, Sessions, set_cookie};

/// The login form's fields.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    /// The session's CSRF token.
    pub csrf_token: String,
    /// The pending-request handle.
    pub handle: String,
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for LoginForm {
    /// Shows only whether each field was filled: the token and handle are
    /// secrets, and people type their password into the username field.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("csrf_token", &redacted(&self.csrf_token))
            .field("handle", &redacted(&self.handle))
            .field("username", &redacted(&self.username))
            .field("password", &redacted(&self.password))
            .finish()
    }
}

/// How a secret field shows in `Debug`: whether it was given, never its value.
pub(crate) fn redacted(value: &str) -> &'static str {
    if value.is_empty() { "" } else { "[redacted]" }
}

/// Why a password was not accepted.
#[derive(Debug)]
pub(crate) enum SignInRefused {
    /// The account tried too many wrong passwords lately.
    Throttled(Limited),
    /// Unknown account or wrong password (told apart only in the log).
    WrongPassword,
}

/// `response` with `Retry-After: seconds`.
pub(crate) fn with_retry_after(mut response: HttpResponse, seconds: u64) -> HttpResponse {
    response
        .headers
        .push(("retry-after", seconds.to_string().into()));
    response
}

/// One lock per account name being tried (keyed by its SHA-256, so the
/// table never holds what was typed); an entry goes away once no attempt
/// holds it, so the table is as large as the attempts in flight.
#[derive(Default)]
pub(crate) struct AccountLocks {
    locks: std::sync::Mutex<HashMap<[u8; 32], Weak<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for AccountLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountLocks").finish_non_exhaustive()
    }
}

impl AccountLocks {
    /// Waits for, and holds until dropped, the turn of `account`.
    pub(crate) async fn lock(&self, account: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let key: [u8; 32] = Sha256::digest(account.as_bytes()).into();
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            locks.retain(|_, lock| lock.strong_count() > 0);
            match locks.get(&key).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(key, Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .filter(|lock| lock.strong_count() > 0)
            .count()
    }
}

/// The rate-limit key of an account name as typed: trimmed and lowercased,
/// so `Alice ` and `alice` share one count.
pub fn account_key(username: &str) -> String {
    username.trim().to_lowercase()
}

/// The consent form's fields.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct ConsentForm {
    /// The session's CSRF token.
    pub csrf_token: String,
    /// The pending-request handle.
    pub handle: String,
    /// `allow` or `deny`.
    pub decision: String,
}

impl std::fmt::Debug for ConsentForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentForm")
            .field("csrf_token", &redacted(&self.csrf_token))
            .field("handle", &redacted(&self.handle))
            .field("decision", &self.decision)
            .finish()
    }
}

/// The `Content-Security-Policy` of every page. No `form-action`: browsers
/// apply it to the redirect that follows the consent form, which goes to the
/// client's origin.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'";

/// An HTML page with the headers every page carries.
pub fn html_response(status: u16, html: String) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![
            ("content-type", "text/html; charset=utf-8".into()),
            ("cache-control", "no-store".into()),
            ("content-security-policy", CONTENT_SECURITY_POLICY.into()),
            ("x-frame-options", "DENY".into()),
            ("x-content-type-options", "nosniff".into()),
            ("referrer-policy", "no-referrer".into()),
        ],
        body: html.into_bytes(),
    }
}

/// The browser state an answer is rendered with.
struct Current<'a> {
    /// The browser's id: its cookie (if well-formed), or the one this request
    /// starts.
    browser: Option<&'a str>,
    /// Whether `browser` was started by this request (it is then sent in
    /// `Set-Cookie`).
    started: bool,
    /// The signed-in session `browser` names, if any.
    session: Option<Session>,
}

impl Current<'_> {
    fn new_cookie(&self) -> Option<&str> {
        self.browser.filter(|_| self.started)
    }
}

/// Whether the pending request behind an outcome is settled (decided, sent
/// back to the client, or gone), so its handle can leave the session. A store
/// failure leaves it bound, so the person can try again.
fn settled(outcome: &AuthorizeOutcome) -> bool {
    match outcome {
        AuthorizeOutcome::Login(_) | AuthorizeOutcome::Consent(_) => false,
        AuthorizeOutcome::ErrorPage(e) => !matches!(
            e.code,
            ErrorCode::ServerError | ErrorCode::TemporarilyUnavailable
        ),
        _ => true,
    }
}

impl Demo {
    pub(crate) fn with_cookie(
        &self,
        mut response: HttpResponse,
        new_cookie: Option<&str>,
    ) -> HttpResponse {
        if let Some(id) = new_cookie {
            response.headers.push((
                "set-cookie",
                set_cookie(id, self.inner.secure_cookies).into(),
            ));
        }
        response
    }

    pub(crate) fn page(&self, status: u16, html: String, new_cookie: Option<&str>) -> HttpResponse {
        self.with_cookie(html_response(status, html), new_cookie)
    }

    /// An error page (never a redirect) for an error from the core.
    pub fn error_page(&self, error: &OAuthError) -> HttpResponse {
        let (status, title, message) = match error.code {
            ErrorCode::ServerError => (
                500,
                "Something went wrong",
                "PhotoBook could not complete this request. Please try again in a moment.",
            ),
            ErrorCode::TemporarilyUnavailable => (
                503,
                "PhotoBook is busy",
                "PhotoBook cannot complete this request right now. Please try again in a moment.",
            ),
            ErrorCode::InvalidClient => (
                400,
                "Unknown app",
                "The app that sent you here is not registered with PhotoBook, so PhotoBook \
                 cannot connect you to it. Go back to the app and let its makers know.",
            ),
            _ => (
                400,
                "This request can't be completed",
                "The app that sent you here asked for something PhotoBook cannot accept, so you \
                 were not sent back to it. Go back to the app and try connecting again.",
            ),
        };
        let html = self.inner.pages.error(&ErrorPage {
            title,
            message,
            code: error.code.as_str(),
            detail: error.description.as_deref(),
        });
        html_response(status, html)
    }

    /// An error page of the demo's own (CSRF, sessions, forms), with its status.
    pub fn problem_page(&self, status: u16, title: &str, message: &str) -> HttpResponse {
        let html = self.inner.pages.error(&ErrorPage {
            title,
            message,
            code: "",
            detail: None,
        });
        html_response(status, html)
    }

    fn expired_page(&self) -> HttpResponse {
        self.problem_page(
            400,
            "This sign-in request has expired",
            "Requests to connect an app are valid for a few minutes and only once. Go back to \
             the app and start connecting again.",
        )
    }

    /// The 400 page for a handle this session may not use: the very page of
    /// an unknown or expired handle, so it tells nothing more.
    fn foreign_handle_page(&self) -> HttpResponse {
        self.error_page(&OAuthError::invalid_request(
            "the authorization request expired; start again",
        ))
    }

    fn login_page(
        &self,
        status: u16,
        prompt: &Prompt,
        csrf_token: &str,
        username: &str,
        error: Option<&str>,
        new_cookie: Option<&str>,
    ) -> HttpResponse {
        let html = self.inner.pages.login(&LoginPage {
            client_name: display_name(prompt),
            handle: &prompt.handle,
            csrf_token,
            username,
            error,
        });
        self.page(status, html, new_cookie)
    }

    /// What a throttled account's `429` login page says, and the seconds
    /// for its `Retry-After` (RFC 6585 §4, RFC 9110 §10.2.3).
    pub(crate) fn throttled_message(&self, limited: &Limited) -> (String, u64) {
        let seconds = limited.retry_after_secs(self.inner.clock.now());
        let message = format!(
            "Too many wrong passwords were tried for this account, so signing in to it is \
             paused for its safety. Please try again after {} (in about {}).",
            clock_time(limited.retry_at),
            minutes(seconds),
        );
        (message, seconds)
    }

    /// Checks a password the way every sign-in form of the demo must (RFC
    /// 6749 §10.10): at most 5 wrong passwords per account per 15 minutes,
    /// then not even the right one is checked until the window ends; one
    /// attempt per account at a time, so that simultaneous guesses cannot
    /// all pass the check before any of them is counted. The returned guard
    /// keeps the account's turn until the caller has signed the user in.
    pub(crate) async fn check_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(Subject, tokio::sync::OwnedMutexGuard<()>), SignInRefused> {
        let account = account_key(username);
        let turn = self.inner.account_locks.lock(&account).await;
        if let Err(limited) = self
            .inner
            .server
            .check_limit(Action::LoginFailure, &account)
            .await
        {
            tracing::info!(
                account = %self.account_for_log(username),
                retry_at = %limited.retry_at,
                "sign-in refused: too many wrong passwords"
            );
            return Err(SignInRefused::Throttled(limited));
        }
        match self.inner.users.verify(username, password) {
            Some(user) => Ok((user, turn)),
            None => {
                self.inner
                    .server
                    .record_attempt(Action::LoginFailure, &account)
                    .await;
                tracing::info!(account = %self.account_for_log(username), "sign-in failed");
                Err(SignInRefused::WrongPassword)
            }
        }
    }

    /// How a failed sign-in names the account in logs: the name when such an
    /// account exists (escaped), else a keyed digest of what was typed
    /// (often a password, which must not reach the log).
    pub(crate) fn account_for_log(&self, username: &str) -> String {
        if self.inner.users.exists(username) {
            escape(username).to_string()
        } else {
            format!(
                "unknown#{}",
                self.inner.account_tags.tag(&account_key(username))
            )
        }
    }

    /// Turns the core's outcome into a response.
    ///
    /// A login or consent page binds its handle to the session it is shown
    /// to; only that session's forms may then use it.
    fn answer(&self, outcome: AuthorizeOutcome, current: Current<'_>) -> HttpResponse {
        let new_cookie = current.new_cookie();
        let sessions = &self.inner.sessions;
        match outcome {
            AuthorizeOutcome::Redirect(redirect) => {
                let mut response = redirect.to_http();
                response
                    .headers
                    .push(("referrer-policy", "no-referrer".into()));
                self.with_cookie(response, new_cookie)
            }
            AuthorizeOutcome::Login(prompt) => {
                // Nothing is stored: the form's token binds the handle to
                // this browser's cookie (a new one if it sent none).
                let fresh;
                let (browser, new_cookie) = match current.browser {
                    Some(id) => (id, new_cookie),
                    None => {
                        fresh = sessions.new_browser_id();
                        (fresh.as_str(), Some(fresh.as_str()))
                    }
                };
                let token = sessions.login_token(browser, Some(&prompt.handle));
                self.login_page(200, &prompt, &token, "", None, new_cookie)
            }
            AuthorizeOutcome::Consent(prompt) => {
                let signed_in = match (current.browser, &current.session) {
                    (Some(id), Some(session)) if sessions.bind_handle(id, &prompt.handle) => {
                        Some(session)
                    }
                    _ => None,
                };
                match signed_in {
                    Some(session) => {
                        let html = self.inner.pages.consent(&ConsentPage::for_prompt(
                            &prompt,
                            session.user.as_str(),
                            &session.csrf,
                        ));
                        self.page(200, html, new_cookie)
                    }
                    None => self.with_cookie(
                        self.problem_page(
                            500,
                            "Something went wrong",
                            "PhotoBook lost track of your sign-in. Go back to the app and try again.",
                        ),
                        new_cookie,
                    ),
                }
            }
            AuthorizeOutcome::ErrorPage(error) => {
                self.with_cookie(self.error_page(&error), new_cookie)
            }
            _ => self.with_cookie(
                self.problem_page(
                    500,
                    "Something went wrong",
                    "PhotoBook could not complete this request.",
                ),
                new_cookie,
            ),
        }
    }

    /// `GET /authorize?{query}`: `query` is the raw query string, `session_cookie`
    /// the value of the `photobook_session` cookie, if sent.
    ///
    /// A browser that is not signed in gets its login page without anything
    /// being stored for it here (see [`crate::session`]).
    pub async fn authorize(&self, query: &str, session_cookie: Option<&str>) -> HttpResponse {
        let browser = session_cookie.filter(|c| Sessions::is_browser_id(c));
        let session = browser.and_then(|c| self.inner.sessions.get(c));
        let user = session.as_ref().map(|s| s.user.clone());
        let outcome = self.inner.server.authorize(query, user.as_ref()).await;
        self.answer(
            outcome,
            Current {
                browser,
                started: false,
                session,
            },
        )
    }

    /// `POST /login` with a form body (`application/x-www-form-urlencoded`).
    pub async fn login(&self, body: &[u8], session_cookie: Option<&str>) -> HttpResponse {
        match serde_urlencoded::from_bytes::<LoginForm>(body) {
            // No handle: not this page's form (JSON, say), rather than an
            // expired request.
            Ok(form) if !form.handle.is_empty() => self.login_form(form, session_cookie).await,
            _ => self.bad_form(),
        }
    }

    pub(crate) fn bad_form(&self) -> HttpResponse {
        self.problem_page(
            400,
            "This form could not be read",
            "The form was sent incomplete, twice over, or not as a web form. Go back to the app and try again.",
        )
    }

    /// `POST /login`, with the form already parsed.
    ///
    /// In order: the handle must name a pending request; the token must be
    /// this browser's (else `403` and the form again) and made for this
    /// handle (else the `400` "expired" page); the account must not be
    /// throttled (else `429`, the password unchecked); then the password.
    pub async fn login_form(&self, form: LoginForm, session_cookie: Option<&str>) -> HttpResponse {
        let prompt = match self.inner.server.pending(&form.handle).await {
            Ok(Some(prompt)) => prompt,
            Ok(None) => return self.expired_page(),
            Err(e) => return self.error_page(&e),
        };
        let sessions = &self.inner.sessions;
        let browser = session_cookie.filter(|c| Sessions::is_browser_id(c));
        let check = browser.map_or(LoginToken::Invalid, |b| {
            sessions.check_login_token(b, &form.handle, &form.csrf_token)
        });
        let browser = match (check, browser) {
            (LoginToken::Valid, Some(browser)) => browser,
            (LoginToken::ForeignHandle, _) => {
                tracing::warn!("login form rejected: handle not shown to this browser");
                return self.expired_page();
            }
            (_, browser) => {
                tracing::warn!("login form rejected: missing or wrong CSRF token");
                // Show the form again, signing nobody in; keep the browser's
                // cookie (a forged post must not log its victim out). Its
                // token binds no handle: only a page this browser was shown
                // for the request may post it.
                let fresh;
                let (browser, new_cookie) = match browser {
                    Some(id) => (id, None),
                    None => {
                        fresh = sessions.new_browser_id();
                        (fresh.as_str(), Some(fresh.as_str()))
                    }
                };
                return self.login_page(
                    403,
                    &prompt,
                    &sessions.login_token(browser, None),
                    "",
                    Some("Your sign-in form expired. Please sign in again."),
                    new_cookie,
                );
            }
        };
        let (user, turn) = match self.check_password(&form.username, &form.password).await {
            Ok(signed) => signed,
            Err(SignInRefused::Throttled(limited)) => {
                let (message, seconds) = self.throttled_message(&limited);
                let token = sessions.login_token(browser, Some(&prompt.handle));
                let page =
                    self.login_page(429, &prompt, &token, &form.username, Some(&message), None);
                return with_retry_after(page, seconds);
            }
            // The form again, `200` (DEMO-CONTRACT allows 200 or 401): a
            // 401 "MUST" carry a `WWW-Authenticate` challenge (RFC 9110
            // §15.5.2), and a form sign-in has no scheme to name.
            Err(SignInRefused::WrongPassword) => {
                return self.login_page(
                    200,
                    &prompt,
                    &sessions.login_token(browser, Some(&form.handle)),
                    &form.username,
                    Some("The username or password is incorrect."),
                    None,
                );
            }
        };
        tracing::info!(
            user = %escape(user.as_str()),
            client = %escape(prompt.client.id.as_str()),
            "signed in"
        );
        // A new session id (fixation). The login handle needs no binding:
        // a consent page binds its own.
        let signed_in = sessions.sign_in(Some(browser), user.clone());
        drop(turn);
        let outcome = self.inner.server.resume(&form.handle, &user).await;
        self.answer(
            outcome,
            Current {
                browser: Some(&signed_in.cookie_value),
                started: true,
                session: Some(signed_in.session),
            },
        )
    }

    /// `POST /consent` with a form body (`application/x-www-form-urlencoded`).
    pub async fn consent(&self, body: &[u8], session_cookie: Option<&str>) -> HttpResponse {
        match serde_urlencoded::from_bytes::<ConsentForm>(body) {
            Ok(form) if !form.handle.is_empty() => self.consent_form(form, session_cookie).await,
            _ => self.bad_form(),
        }
    }

    /// `POST /consent`, with the form already parsed.
    pub async fn consent_form(
        &self,
        form: ConsentForm,
        session_cookie: Option<&str>,
    ) -> HttpResponse {
        let session = session_cookie.and_then(|c| self.inner.sessions.get(c).map(|s| (c, s)));
        let Some((session_id, session)) = session else {
            return self.problem_page(
                403,
                "You are not signed in",
                "Your PhotoBook session has ended. Go back to the app and start connecting again.",
            );
        };
        let user = session.user.clone();
        if !session.csrf_matches(&form.csrf_token) {
            tracing::warn!(user = %escape(user.as_str()), "consent form rejected: missing or wrong CSRF token");
            return self.problem_page(
                403,
                "This form has expired",
                "The form was not sent from your current PhotoBook session. Go back to the app \
                 and start connecting again.",
            );
        }
        if !self.inner.sessions.holds_handle(session_id, &form.handle) {
            tracing::warn!(user = %escape(user.as_str()), "consent form rejected: handle not issued to this session");
            return self.foreign_handle_page();
        }
        let decision = match form.decision.as_str() {
            "allow" => Decision::Allow,
            "deny" => Decision::Deny,
            _ => return self.bad_form(),
        };
        tracing::info!(user = %escape(user.as_str()), decision = ?decision, "consent decided");
        let outcome = self
            .inner
            .server
            .decide(&form.handle, &user, decision)
            .await;
        if settled(&outcome) {
            self.inner.sessions.release_handle(session_id, &form.handle);
        }
        self.answer(
            outcome,
            Current {
                browser: Some(session_id),
                started: false,
                session: Some(session),
            },
        )
    }

    /// `GET /api/photos`, framework-neutral: checks the bearer token (RFC 6750)
    /// and the `photos.read` scope, then answers the JSON photo list. For
    /// frameworks whose Tessera adapter has no bearer extractor or guard.
    pub async fn photos_response(
        &self,
        authorization: Option<&str>,
        query: Option<&str>,
    ) -> HttpResponse {
        let server = &self.inner.server;
        let realm = &server.config().realm;
        // The photo API's own audience (RFC 8707 §2): the default resource,
        // `{issuer}/api`; a token for the MCP server is refused here.
        let checked = match &server.config().default_resource {
            Some(api) => server.verify_bearer_for(api, authorization, query).await,
            None => server.verify_bearer(authorization, query).await,
        };
        let token = match checked.and_then(|t| t.require(&[PHOTOS_READ]).map(|()| t)) {
            Ok(token) => token,
            Err(e) => {
                let scheme = tessera::presented_scheme(authorization);
                return e.to_http_in(scheme, realm, None, None);
            }
        };
        let body = serde_json::to_string(&photos_for(&token)).unwrap_or_default();
        HttpResponse::json_no_store(200, body)
    }

    /// `GET /`: a short page about the provider.
    pub fn home(&self) -> HttpResponse {
        let url = self
            .inner
            .server
            .endpoint_url(tessera::Endpoint::Metadata)
            .unwrap_or_default();
        let device = self
            .inner
            .server
            .device_grant_enabled()
            .then(|| self.inner.server.device_verification_uri());
        html_response(
            200,
            self.inner.pages.home_with_device(&url, device.as_deref()),
        )
    }

    /// Any unknown path: a 404 page.
    pub fn not_found(&self) -> HttpResponse {
        self.problem_page(404, "Page not found", "There is nothing at this address.")
    }

    /// A form body over the size limit: a 413 page.
    pub fn too_large(&self) -> HttpResponse {
        self.problem_page(413, "Request too large", "The form sent was too large.")
    }
}

/// A time of day for a page, rounded up to the minute: `14:06 UTC`.
pub(crate) fn clock_time(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let rounded = if at.second() > 0 || at.nanosecond() > 0 {
        at + time::Duration::minutes(1)
    } else {
        at
    };
    format!("{:02}:{:02} UTC", rounded.hour(), rounded.minute())
}

/// A wait in whole minutes, rounded up: `1 minute`, `15 minutes`.
pub(crate) fn minutes(seconds: u64) -> String {
    match seconds.div_ceil(60).max(1) {
        1 => "1 minute".to_owned(),
        n => format!("{n} minutes"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn form_debug_hides_tokens_handles_and_what_was_typed() {
        // Issue 11, defect 7: no CSRF token or handle in Debug output; and
        // no username, which is often a password typed in the wrong field.
        let login = LoginForm {
            csrf_token: "csrf-secret".into(),
            handle: "tsl_secret-handle".into(),
            username: "hunter2-typed-as-username".into(),
            password: "pw-secret".into(),
        };
        let consent = ConsentForm {
            csrf_token: "csrf-secret".into(),
            handle: "tsp_secret-handle".into(),
            decision: "allow".into(),
        };
        for shown in [format!("{login:?}"), format!("{consent:?}")] {
            assert!(shown.contains("[redacted]"), "{shown}");
            for secret in ["csrf-secret", "secret-handle", "hunter2", "pw-secret"] {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
        assert!(format!("{consent:?}").contains("allow"));
        assert!(format!("{:?}", LoginForm::default()).contains("csrf_token: \"\""));
    }

    #[tokio::test]
    async fn account_locks_serialise_one_account_and_go_away() {
        let locks = AccountLocks::default();
        let alice = locks.lock("alice").await;
        // Another account is not held up.
        let bob = locks.lock("bob").await;
        assert_eq!(locks.len(), 2);
        // Alice's second attempt waits for the first.
        let second =
            tokio::time::timeout(std::time::Duration::from_millis(50), locks.lock("alice")).await;
        assert!(second.is_err(), "alice's second attempt waits");
        drop(alice);
        drop(bob);
        let again = locks.lock("alice").await;
        assert_eq!(locks.len(), 1);
        drop(again);
        assert_eq!(locks.len(), 0);
        assert!(!format!("{locks:?}").contains("alice"));
    }

    #[test]
    fn account_keys_are_trimmed_and_lowercased() {
        assert_eq!(account_key(" Alice\t"), "alice");
        assert_eq!(account_key("ALICE"), account_key("alice"));
        assert_ne!(account_key("alice2"), account_key("alice"));
    }

    #[test]
    fn retry_times_round_up() {
        // 2026-01-02 14:05:00 UTC.
        let t = time::OffsetDateTime::from_unix_timestamp(1_767_362_700).unwrap();
        assert_eq!(clock_time(t), "14:05 UTC");
        assert_eq!(clock_time(t + time::Duration::seconds(1)), "14:06 UTC");
        let paris = t.to_offset(time::UtcOffset::from_hms(1, 0, 0).unwrap());
        assert_eq!(clock_time(paris), "14:05 UTC");
        assert_eq!(minutes(1), "1 minute");
        assert_eq!(minutes(60), "1 minute");
        assert_eq!(minutes(61), "2 minutes");
        assert_eq!(minutes(900), "15 minutes");
    }
}
