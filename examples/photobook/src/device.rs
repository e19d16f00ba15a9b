//! The device verification page (RFC 8628 §3.3), framework-neutral: where a
//! person types the code their device (e.g. `photo-cli`) shows, signs in,
//! and allows or denies the device. Each step answers a
//! [`tessera::HttpResponse`], as in [`crate::flow`].
//!
//! | step | request | answer |
//! |---|---|---|
//! | [`Demo::device_page`] | `GET {device}?user_code=…` | the page with one form, input `user_code` (prefilled from the query) |
//! | [`Demo::device_submit`] | `POST {device}` (`csrf_token`, `user_code`) | the consent page if signed in, else the login page; the page again (400) for an unknown code, 429 when throttled |
//! | [`Demo::device_login`] | `POST {device}/login` (`csrf_token`, `user_code`, `username`, `password`) | the consent page, or the login page again |
//! | [`Demo::device_consent`] | `POST {device}/consent` (`csrf_token`, `user_code`, `decision`) | "return to your device", "access was denied", or the expired page |
//!
//! `{device}` is [`tessera::Server::device_verification_path`].
//!
//! The verification form's CSRF token is a MAC over the browser's cookie
//! (nothing is stored for a browser that has not signed in); the login
//! form's also binds the code this browser entered, and the consent form is
//! accepted only from the signed-in session it was shown to, for the code it
//! was shown for (bound as the session's handles are, see
//! [`crate::session`]). Wrong codes count against the browser (or, signed
//! in, the user) through the core's limit (RFC 8628 §5.1); the login keeps
//! the per-account throttling of [`crate::flow`]. A user code is never
//! logged.

use std::net::IpAddr;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tessera::{Decision, DevicePrompt, HttpResponse, Limited, UserCode, UserCodeError};

use crate::Demo;
use crate::flow::{SignInRefused, clock_time, minutes, redacted, with_retry_after};
use crate::logsafe::escape;
use crate::pages::{
    DeviceConsentPage, DeviceLoginPage, DevicePage, LoginPage, client_display_name,
};
use crate::session::{LoginToken, Sessions};

/// The verification form's fields.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct DeviceForm {
    /// The CSRF token.
    pub csrf_token: String,
    /// The code as typed.
    pub user_code: String,
}

/// The device login form's fields.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct DeviceLoginForm {
    /// The CSRF token (bound to the user code).
    pub csrf_token: String,
    /// The user code (normalised, from the hidden input).
    pub user_code: String,
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
}

/// The device consent form's fields.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct DeviceConsentForm {
    /// The session's CSRF token.
    pub csrf_token: String,
    /// The user code (normalised, from the hidden input).
    pub user_code: String,
    /// `allow` or `deny`.
    pub decision: String,
}

impl std::fmt::Debug for DeviceForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceForm")
            .field("csrf_token", &redacted(&self.csrf_token))
            .field("user_code", &redacted(&self.user_code))
            .finish()
    }
}

impl std::fmt::Debug for DeviceLoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceLoginForm")
            .field("csrf_token", &redacted(&self.csrf_token))
            .field("user_code", &redacted(&self.user_code))
            .field("username", &redacted(&self.username))
            .field("password", &redacted(&self.password))
            .finish()
    }
}

impl std::fmt::Debug for DeviceConsentForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceConsentForm")
            .field("csrf_token", &redacted(&self.csrf_token))
            .field("user_code", &redacted(&self.user_code))
            .field("decision", &self.decision)
            .finish()
    }
}

/// How a user code is bound to a signed-in session (next to the
/// pending-request handles, which never look like this).
fn session_binding(user_code: &str) -> String {
    format!("device:{user_code}")
}

/// The normalised form (`XXXX-XXXX`) of what was typed, if it is a code.
fn normalised(typed: &str) -> Option<String> {
    UserCode::parse(typed).map(|c| c.display())
}

/// What the page prefills after a wrong code: what was typed, if short.
fn as_typed(typed: &str) -> &str {
    if typed.chars().count() <= 32 {
        typed
    } else {
        ""
    }
}

/// The limit key of whoever types codes (RFC 8628 §5.1): the signed-in
/// user; else the peer's address (an IPv6 one by its /64, what one host
/// usually gets), since anyone can get a fresh cookie, and with it ten
/// fresh guesses, by loading the page again; else, when the framework did
/// not say who is connected, a digest of the browser's cookie (so the
/// limiter holds no cookie). Behind a reverse proxy every anonymous browser
/// shares the proxy's address: pass the client's own.
fn limit_key(browser: &str, user: Option<&str>, peer: Option<IpAddr>) -> String {
    match (user, peer) {
        (Some(user), _) => format!("user:{user}"),
        (None, Some(ip)) => format!("ip:{}", tessera::SourceNetwork::of(ip)),
        (None, None) => {
            let digest = Sha256::digest(browser.as_bytes());
            let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            format!("browser:{hex}")
        }
    }
}

impl Demo {
    /// The path of the device verification page (`GET` and `POST`).
    pub fn device_path(&self) -> &str {
        self.server().device_verification_path()
    }

    /// The path the device login form posts to: `{device}/login`.
    pub fn device_login_path(&self) -> String {
        format!("{}/login", self.device_path())
    }

    /// The path the device consent form posts to: `{device}/consent`.
    pub fn device_consent_path(&self) -> String {
        format!("{}/consent", self.device_path())
    }

    /// The verification page with `token`, `user_code` prefilled and an
    /// optional error.
    fn device_form_page(
        &self,
        status: u16,
        token: &str,
        user_code: &str,
        error: Option<&str>,
        new_cookie: Option<&str>,
    ) -> HttpResponse {
        let html = self.inner.pages.device(&DevicePage {
            action: self.device_path(),
            csrf_token: token,
            user_code,
            error,
        });
        self.page(status, html, new_cookie)
    }

    /// The verification page for `browser` (a fresh one, sent in
    /// `Set-Cookie`, if it has none).
    fn device_form_for(
        &self,
        status: u16,
        browser: Option<&str>,
        user_code: &str,
        error: Option<&str>,
    ) -> HttpResponse {
        let sessions = &self.inner.sessions;
        let fresh;
        let (browser, new_cookie) = match browser {
            Some(id) => (id, None),
            None => {
                fresh = sessions.new_browser_id();
                (fresh.as_str(), Some(fresh.as_str()))
            }
        };
        let token = sessions.device_token(browser, None);
        self.device_form_page(status, &token, user_code, error, new_cookie)
    }

    /// The 400 page of a code that is unknown, expired or already decided.
    fn device_expired_page(&self) -> HttpResponse {
        self.problem_page(
            400,
            "This code has expired",
            "Codes are valid for a few minutes and only once. Start again on your device to \
             get a new code.",
        )
    }

    /// The 503 page of a store fault.
    fn device_busy_page(&self) -> HttpResponse {
        self.problem_page(
            503,
            "PhotoBook is busy",
            "PhotoBook cannot check this code right now. Please try again in a moment.",
        )
    }

    /// The 429 verification page after too many wrong codes.
    fn device_throttled_page(&self, browser: &str, limited: &Limited) -> HttpResponse {
        let now = self.inner.clock.now();
        let seconds = limited.retry_after_secs(now);
        let message = format!(
            "Too many wrong codes were entered, so checking codes is paused for a while. \
             Please try again after {} (in about {}).",
            clock_time(limited.retry_at),
            minutes(seconds),
        );
        with_retry_after(
            self.device_form_for(429, Some(browser), "", Some(&message)),
            seconds,
        )
    }

    /// The device login page for `prompt`, its form bound to this browser
    /// and code.
    fn device_login_page(
        &self,
        status: u16,
        prompt: &DevicePrompt,
        browser: &str,
        username: &str,
        error: Option<&str>,
    ) -> HttpResponse {
        let token = self
            .inner
            .sessions
            .device_token(browser, Some(&prompt.user_code));
        let action = self.device_login_path();
        let html = self.inner.pages.device_login(&DeviceLoginPage {
            page: LoginPage {
                client_name: client_display_name(&prompt.client),
                handle: "",
                csrf_token: &token,
                username,
                error,
            },
            action: &action,
            user_code: &prompt.user_code,
        });
        self.page(status, html, None)
    }

    /// The device consent page for the signed-in session `session_id`,
    /// binding the code to it; `None` if the session is gone.
    fn device_consent_page(
        &self,
        prompt: &DevicePrompt,
        session_id: &str,
        new_cookie: Option<&str>,
    ) -> HttpResponse {
        let sessions = &self.inner.sessions;
        let session = sessions
            .get(session_id)
            .filter(|_| sessions.bind_handle(session_id, &session_binding(&prompt.user_code)));
        let Some(session) = session else {
            return self.with_cookie(
                self.problem_page(
                    500,
                    "Something went wrong",
                    "PhotoBook lost track of your sign-in. Enter the code again.",
                ),
                new_cookie,
            );
        };
        let action = self.device_consent_path();
        let html = self
            .inner
            .pages
            .device_consent(&DeviceConsentPage::for_prompt(
                prompt,
                session.user.as_str(),
                &session.csrf,
                &action,
            ));
        self.page(200, html, new_cookie)
    }

    /// `GET {device}?{query}`: the verification page, its input prefilled
    /// from `user_code` in the query when that is a well-formed code.
    pub fn device_page(&self, query: &str, session_cookie: Option<&str>) -> HttpResponse {
        let browser = session_cookie.filter(|c| Sessions::is_browser_id(c));
        let prefill = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "user_code")
            .and_then(|(_, v)| normalised(&v))
            .unwrap_or_default();
        self.device_form_for(200, browser, &prefill, None)
    }

    /// `POST {device}` with a form body (`application/x-www-form-urlencoded`).
    pub async fn device_submit(&self, body: &[u8], session_cookie: Option<&str>) -> HttpResponse {
        self.device_submit_from(body, session_cookie, None).await
    }

    /// `POST {device}` from `peer`, the connection's address: wrong codes
    /// of a browser that is not signed in count against it (see
    /// [`Demo::device_submit_form`]).
    pub async fn device_submit_from(
        &self,
        body: &[u8],
        session_cookie: Option<&str>,
        peer: Option<IpAddr>,
    ) -> HttpResponse {
        match serde_urlencoded::from_bytes::<DeviceForm>(body) {
            Ok(form) => self.device_submit_form(form, session_cookie, peer).await,
            Err(_) => self.bad_form(),
        }
    }

    /// `POST {device}`, with the form already parsed.
    ///
    /// In order: the CSRF token must be this browser's (else `403` and the
    /// page again); the user, or for a browser not signed in its `peer`
    /// address (else its cookie), must not be throttled (else `429`); the
    /// code must name a pending request (else `400` and the page again).
    /// Then the consent page if signed in, else the login page.
    pub async fn device_submit_form(
        &self,
        form: DeviceForm,
        session_cookie: Option<&str>,
        peer: Option<IpAddr>,
    ) -> HttpResponse {
        let sessions = &self.inner.sessions;
        let browser = session_cookie.filter(|c| Sessions::is_browser_id(c));
        let check = browser.map_or(LoginToken::Invalid, |b| {
            sessions.check_device_token(b, None, &form.csrf_token)
        });
        let Some(browser) = browser.filter(|_| check == LoginToken::Valid) else {
            tracing::warn!("device form rejected: missing or wrong CSRF token");
            return self.device_form_for(
                403,
                browser,
                as_typed(&form.user_code),
                Some("This form expired. Please enter the code again."),
            );
        };
        let session = sessions.get(browser);
        let key = limit_key(browser, session.as_ref().map(|s| s.user.as_str()), peer);
        let prompt = match self.inner.server.device_prompt(&form.user_code, &key).await {
            Ok(prompt) => prompt,
            Err(UserCodeError::Unknown) => {
                tracing::info!("device code not accepted: unknown or expired");
                return self.device_form_for(
                    400,
                    Some(browser),
                    as_typed(&form.user_code),
                    Some(
                        "That code is not valid or has expired. Check the code on your device \
                         and try again.",
                    ),
                );
            }
            Err(UserCodeError::Limited(limited)) => {
                tracing::info!(retry_at = %limited.retry_at, "device code refused: too many wrong codes");
                return self.device_throttled_page(browser, &limited);
            }
            Err(_) => return self.device_busy_page(),
        };
        tracing::info!(client = %escape(prompt.client.id.as_str()), "device code accepted");
        match session {
            Some(_) => self.device_consent_page(&prompt, browser, None),
            None => self.device_login_page(200, &prompt, browser, "", None),
        }
    }

    /// `POST {device}/login` with a form body.
    pub async fn device_login(&self, body: &[u8], session_cookie: Option<&str>) -> HttpResponse {
        match serde_urlencoded::from_bytes::<DeviceLoginForm>(body) {
            Ok(form) => self.device_login_form(form, session_cookie).await,
            Err(_) => self.bad_form(),
        }
    }

    /// `POST {device}/login`, with the form already parsed.
    ///
    /// In order: the token must be this browser's (else `403` and the
    /// verification page again) and made for this code (else the `400`
    /// "expired" page); the code must still be pending; the account must not
    /// be throttled (else `429`, the password unchecked); then the password.
    /// A right one signs in (a new session id) and shows the consent page.
    pub async fn device_login_form(
        &self,
        form: DeviceLoginForm,
        session_cookie: Option<&str>,
    ) -> HttpResponse {
        let sessions = &self.inner.sessions;
        let browser = session_cookie.filter(|c| Sessions::is_browser_id(c));
        let Some(code) = normalised(&form.user_code) else {
            return self.device_expired_page();
        };
        let check = browser.map_or(LoginToken::Invalid, |b| {
            sessions.check_device_token(b, Some(&code), &form.csrf_token)
        });
        let browser = match (check, browser) {
            (LoginToken::Valid, Some(browser)) => browser,
            (LoginToken::ForeignHandle, _) => {
                tracing::warn!("device login form rejected: code not entered in this browser");
                return self.device_expired_page();
            }
            (_, browser) => {
                tracing::warn!("device login form rejected: missing or wrong CSRF token");
                return self.device_form_for(
                    403,
                    browser,
                    "",
                    Some("Your sign-in form expired. Please enter the code again."),
                );
            }
        };
        let prompt = match self
            .inner
            .server
            .device_prompt(&code, &limit_key(browser, None, None))
            .await
        {
            Ok(prompt) => prompt,
            Err(UserCodeError::Unknown) => return self.device_expired_page(),
            Err(UserCodeError::Limited(limited)) => {
                return self.device_throttled_page(browser, &limited);
            }
            Err(_) => return self.device_busy_page(),
        };
        let (user, turn) = match self.check_password(&form.username, &form.password).await {
            Ok(signed) => signed,
            Err(SignInRefused::Throttled(limited)) => {
                let (message, seconds) = self.throttled_message(&limited);
                let page =
                    self.device_login_page(429, &prompt, browser, &form.username, Some(&message));
                return with_retry_after(page, seconds);
            }
            // `200`, as at the authorization endpoint's login (see there).
            Err(SignInRefused::WrongPassword) => {
                return self.device_login_page(
                    200,
                    &prompt,
                    browser,
                    &form.username,
                    Some("The username or password is incorrect."),
                );
            }
        };
        tracing::info!(
            user = %escape(user.as_str()),
            client = %escape(prompt.client.id.as_str()),
            "signed in (device)"
        );
        let signed_in = sessions.sign_in(Some(browser), user);
        drop(turn);
        self.device_consent_page(
            &prompt,
            &signed_in.cookie_value,
            Some(&signed_in.cookie_value),
        )
    }

    /// `POST {device}/consent` with a form body.
    pub async fn device_consent(&self, body: &[u8], session_cookie: Option<&str>) -> HttpResponse {
        match serde_urlencoded::from_bytes::<DeviceConsentForm>(body) {
            Ok(form) => self.device_consent_form(form, session_cookie).await,
            Err(_) => self.bad_form(),
        }
    }

    /// `POST {device}/consent`, with the form already parsed: records the
    /// signed-in user's decision for the code.
    pub async fn device_consent_form(
        &self,
        form: DeviceConsentForm,
        session_cookie: Option<&str>,
    ) -> HttpResponse {
        let sessions = &self.inner.sessions;
        let session = session_cookie.and_then(|c| sessions.get(c).map(|s| (c, s)));
        let Some((session_id, session)) = session else {
            return self.problem_page(
                403,
                "You are not signed in",
                "Your PhotoBook session has ended. Enter the code from your device again.",
            );
        };
        let user = session.user.clone();
        if !session.csrf_matches(&form.csrf_token) {
            tracing::warn!(user = %escape(user.as_str()), "device consent form rejected: missing or wrong CSRF token");
            return self.problem_page(
                403,
                "This form has expired",
                "The form was not sent from your current PhotoBook session. Enter the code from \
                 your device again.",
            );
        }
        let binding = normalised(&form.user_code).map(|c| session_binding(&c));
        let Some(binding) = binding.filter(|b| sessions.holds_handle(session_id, b)) else {
            tracing::warn!(user = %escape(user.as_str()), "device consent form rejected: code not shown to this session");
            return self.device_expired_page();
        };
        let decision = match form.decision.as_str() {
            "allow" => Decision::Allow,
            "deny" => Decision::Deny,
            _ => return self.bad_form(),
        };
        match self
            .inner
            .server
            .device_decide(&form.user_code, &user, decision)
            .await
        {
            Ok(true) => {
                sessions.release_handle(session_id, &binding);
                tracing::info!(user = %escape(user.as_str()), decision = ?decision, "device consent decided");
                match decision {
                    Decision::Allow => self.problem_page(
                        200,
                        "You can now return to your device",
                        "Your device is connected to your PhotoBook account. It will continue \
                         by itself in a few seconds.",
                    ),
                    _ => self.problem_page(
                        200,
                        "Access was denied; you can close this page",
                        "The device was not connected to your PhotoBook account.",
                    ),
                }
            }
            Ok(false) => {
                sessions.release_handle(session_id, &binding);
                self.device_expired_page()
            }
            Err(_) => self.device_busy_page(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn device_forms_debug_hide_codes_and_tokens() {
        let submit = DeviceForm {
            csrf_token: "csrf-secret".into(),
            user_code: "BCDF-GHJK".into(),
        };
        let login = DeviceLoginForm {
            csrf_token: "csrf-secret".into(),
            user_code: "BCDF-GHJK".into(),
            username: "hunter2".into(),
            password: "pw-secret".into(),
        };
        let consent = DeviceConsentForm {
            csrf_token: "csrf-secret".into(),
            user_code: "BCDF-GHJK".into(),
            decision: "allow".into(),
        };
        for shown in [
            format!("{submit:?}"),
            format!("{login:?}"),
            format!("{consent:?}"),
        ] {
            for secret in ["csrf-secret", "BCDF", "hunter2", "pw-secret"] {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
    }

    #[test]
    fn limit_keys_hold_no_cookie() {
        let id = "a".repeat(43);
        let key = limit_key(&id, None, None);
        assert!(key.starts_with("browser:") && !key.contains(&id));
        assert_eq!(limit_key(&id, Some("alice"), None), "user:alice");
        // A browser not signed in counts by its address when known, an
        // IPv6 one by its /64 (a fresh cookie is free; a fresh address not).
        let v4: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(limit_key(&id, None, Some(v4)), "ip:203.0.113.7");
        let v6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        assert_eq!(limit_key(&id, None, Some(v6)), "ip:2001:db8:1:2::/64");
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(limit_key(&id, None, Some(mapped)), "ip:203.0.113.7");
        assert_eq!(limit_key(&id, Some("alice"), Some(v4)), "user:alice");
        assert_eq!(normalised("bcdfghjk").as_deref(), Some("BCDF-GHJK"));
        assert_eq!(normalised("nope"), None);
        assert_eq!(as_typed(&"x".repeat(40)), "");
    }
}
