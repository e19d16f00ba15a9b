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
//! Both forms need the session's CSRF token, and a handle that was shown to
//! that same session (bound when its login or consent page was rendered, see
//! [`crate::session`]); a handle from another browser gets the same 400
//! "expired" page as an unknown one, and nothing is resumed or decided.

use serde::Deserialize;
use tessera::Prompt;
use tessera::{AuthorizeOutcome, Decision, ErrorCode, HttpResponse, OAuthError};

use crate::Demo;
use crate::pages::{ConsentPage, ErrorPage, LoginPage, display_name};
use crate::photos::{PHOTOS_READ, photos_for};
use crate::session::{Session, set_cookie};

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
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
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
            .field("decision", &self.decision)
            .finish_non_exhaustive()
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

/// The session state an answer is rendered with.
struct Current<'a> {
    /// Whether the session was started by this request (its id is then sent
    /// in `Set-Cookie`).
    started: bool,
    /// The request's live session, with its id.
    session: Option<(&'a str, Session)>,
}

impl Current<'_> {
    fn new_cookie(&self) -> Option<&str> {
        match &self.session {
            Some((id, _)) if self.started => Some(id),
            _ => None,
        }
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
    fn with_cookie(&self, mut response: HttpResponse, new_cookie: Option<&str>) -> HttpResponse {
        if let Some(id) = new_cookie {
            response.headers.push((
                "set-cookie",
                set_cookie(id, self.inner.secure_cookies).into(),
            ));
        }
        response
    }

    fn page(&self, status: u16, html: String, new_cookie: Option<&str>) -> HttpResponse {
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
        session: &Session,
        username: &str,
        error: Option<&str>,
        new_cookie: Option<&str>,
    ) -> HttpResponse {
        let html = self.inner.pages.login(&LoginPage {
            client_name: display_name(prompt),
            handle: &prompt.handle,
            csrf_token: &session.csrf,
            username,
            error,
        });
        self.page(status, html, new_cookie)
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
            AuthorizeOutcome::Login(prompt) => match &current.session {
                Some((id, session)) if sessions.bind_handle(id, &prompt.handle) => {
                    self.login_page(200, &prompt, session, "", None, new_cookie)
                }
                _ => {
                    let fresh = sessions.start_anonymous();
                    sessions.bind_handle(&fresh.cookie_value, &prompt.handle);
                    self.login_page(
                        200,
                        &prompt,
                        &fresh.session,
                        "",
                        None,
                        Some(&fresh.cookie_value),
                    )
                }
            },
            AuthorizeOutcome::Consent(prompt) => {
                let signed_in = current
                    .session
                    .as_ref()
                    .and_then(|(id, s)| s.user.as_ref().map(|u| (*id, s, u)))
                    .filter(|(id, _, _)| sessions.bind_handle(id, &prompt.handle));
                match signed_in {
                    Some((_, session, user)) => {
                        let html = self.inner.pages.consent(&ConsentPage::for_prompt(
                            &prompt,
                            user.as_str(),
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
    pub async fn authorize(&self, query: &str, session_cookie: Option<&str>) -> HttpResponse {
        let session = session_cookie.and_then(|c| self.inner.sessions.get(c).map(|s| (c, s)));
        let user = session.as_ref().and_then(|(_, s)| s.user.clone());
        let outcome = self.inner.server.authorize(query, user.as_ref()).await;
        self.answer(
            outcome,
            Current {
                started: false,
                session,
            },
        )
    }

    /// `POST /login` with a form body (`application/x-www-form-urlencoded`).
    pub async fn login(&self, body: &[u8], session_cookie: Option<&str>) -> HttpResponse {
        match serde_urlencoded::from_bytes::<LoginForm>(body) {
            Ok(form) => self.login_form(form, session_cookie).await,
            Err(_) => self.bad_form(),
        }
    }

    fn bad_form(&self) -> HttpResponse {
        self.problem_page(
            400,
            "This form could not be read",
            "The form was sent incomplete or twice over. Go back to the app and try again.",
        )
    }

    /// `POST /login`, with the form already parsed.
    pub async fn login_form(&self, form: LoginForm, session_cookie: Option<&str>) -> HttpResponse {
        let prompt = match self.inner.server.pending(&form.handle).await {
            Ok(Some(prompt)) => prompt,
            Ok(None) => return self.expired_page(),
            Err(e) => return self.error_page(&e),
        };
        let session = session_cookie.and_then(|c| self.inner.sessions.get(c).map(|s| (c, s)));
        let (session_id, session) = match session {
            Some((id, s)) if s.csrf_matches(&form.csrf_token) => (id, s),
            other => {
                tracing::warn!("login form rejected: missing or wrong CSRF token");
                // Show the form again, signing nobody in; keep a live session
                // (a forged post must not log its victim out).
                // The handle is not bound to a session this way.
                let (session, new_cookie) = match other {
                    Some((_, s)) => (s, None),
                    None => {
                        let fresh = self.inner.sessions.start_anonymous();
                        (fresh.session, Some(fresh.cookie_value))
                    }
                };
                return self.login_page(
                    403,
                    &prompt,
                    &session,
                    "",
                    Some("Your sign-in form expired. Please sign in again."),
                    new_cookie.as_deref(),
                );
            }
        };
        if !self.inner.sessions.holds_handle(session_id, &form.handle) {
            tracing::warn!("login form rejected: handle not issued to this session");
            return self.expired_page();
        }
        let Some(user) = self.inner.users.verify(&form.username, &form.password) else {
            tracing::info!(username = %form.username, "sign-in failed");
            return self.login_page(
                401,
                &prompt,
                &session,
                &form.username,
                Some("The username or password is incorrect."),
                None,
            );
        };
        tracing::info!(user = %user, client = %prompt.client.id, "signed in");
        // A new session id (fixation), holding this session's handles.
        let signed_in = self.inner.sessions.sign_in(Some(session_id), user.clone());
        let outcome = self.inner.server.resume(&form.handle, &user).await;
        if settled(&outcome) {
            self.inner
                .sessions
                .release_handle(&signed_in.cookie_value, &form.handle);
        }
        self.answer(
            outcome,
            Current {
                started: true,
                session: Some((&signed_in.cookie_value, signed_in.session)),
            },
        )
    }

    /// `POST /consent` with a form body (`application/x-www-form-urlencoded`).
    pub async fn consent(&self, body: &[u8], session_cookie: Option<&str>) -> HttpResponse {
        match serde_urlencoded::from_bytes::<ConsentForm>(body) {
            Ok(form) => self.consent_form(form, session_cookie).await,
            Err(_) => self.bad_form(),
        }
    }

    /// `POST /consent`, with the form already parsed.
    pub async fn consent_form(
        &self,
        form: ConsentForm,
        session_cookie: Option<&str>,
    ) -> HttpResponse {
        let session = session_cookie.and_then(|c| self.inner.sessions.get(c).map(|s| (c, s)));
        let Some((session_id, session, user)) =
            session.and_then(|(id, s)| s.user.clone().map(|u| (id, s, u)))
        else {
            return self.problem_page(
                403,
                "You are not signed in",
                "Your PhotoBook session has ended. Go back to the app and start connecting again.",
            );
        };
        if !session.csrf_matches(&form.csrf_token) {
            tracing::warn!(user = %user, "consent form rejected: missing or wrong CSRF token");
            return self.problem_page(
                403,
                "This form has expired",
                "The form was not sent from your current PhotoBook session. Go back to the app \
                 and start connecting again.",
            );
        }
        if !self.inner.sessions.holds_handle(session_id, &form.handle) {
            tracing::warn!(user = %user, "consent form rejected: handle not issued to this session");
            return self.foreign_handle_page();
        }
        let decision = match form.decision.as_str() {
            "allow" => Decision::Allow,
            "deny" => Decision::Deny,
            _ => return self.bad_form(),
        };
        tracing::info!(user = %user, decision = ?decision, "consent decided");
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
                started: false,
                session: Some((session_id, session)),
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
        let realm = &self.inner.server.config().realm;
        let token = match self
            .inner
            .server
            .verify_bearer(authorization, query)
            .await
            .and_then(|t| t.require(&[PHOTOS_READ]).map(|()| t))
        {
            Ok(token) => token,
            Err(e) => return e.to_http(realm),
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
        html_response(200, self.inner.pages.home(&url))
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
