//! The device grant itself (RFC 8628): asking for a user code, then polling
//! the token endpoint until the person has decided.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    AccessToken, AsyncHttpClient, ClientId, EndpointNotSet, EndpointSet, HttpRequest, HttpResponse,
    Scope, StandardDeviceAuthorizationResponse, TokenResponse,
};
use serde::Deserialize;
use tokio::sync::Notify;

use crate::error::{Error, describe_reqwest, from_oauth};
use crate::progress::{Poll, Progress};
use crate::provider::Provider;
use crate::{CLIENT_ID, MAX_POLL_FAILURES, SCOPE};

/// The device authorization endpoint's answer (RFC 8628 §3.2).
pub type DeviceAuthorization = StandardDeviceAuthorizationResponse;

/// The oauth2 client: device authorization and token endpoints set.
type DeviceClient =
    BasicClient<EndpointNotSet, EndpointSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

fn oauth_client(provider: &Provider) -> DeviceClient {
    // A public client: no secret, so oauth2 sends `client_id` in the body.
    BasicClient::new(ClientId::new(CLIENT_ID.to_owned()))
        .set_device_authorization_url(provider.device_authorization_url.clone())
        .set_token_uri(provider.token_url.clone())
}

/// Asks the device authorization endpoint for a device code and a user code
/// (RFC 8628 §3.1), for scope `photos.read`.
pub async fn request_device_authorization(
    http: &reqwest::Client,
    provider: &Provider,
) -> Result<DeviceAuthorization, Error> {
    let details: DeviceAuthorization = oauth_client(provider)
        .exchange_device_code()
        .add_scope(Scope::new(SCOPE.to_owned()))
        .request_async(http)
        .await
        .map_err(|e| from_oauth(e, provider.device_authorization_url.as_str()))?;
    check_timing(details.expires_in(), details.interval())?;
    Ok(details)
}

/// The longest `expires_in` and `interval` photo-cli waits for: a provider
/// answering more (`u64::MAX` seconds, say) is refused with a one-line
/// error, where adding it to the clock would panic (RFC 8628 §3.2 gives
/// no bound; 600 s and 5 s are usual).
const MAX_EXPIRES_IN: Duration = Duration::from_secs(24 * 3600);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

fn check_timing(expires_in: Duration, interval: Duration) -> Result<(), Error> {
    if expires_in > MAX_EXPIRES_IN || interval > MAX_INTERVAL {
        return Err(Error::OAuth(format!(
            "the device authorization answer asks to wait too long (expires_in {} s, interval {} s)",
            expires_in.as_secs(),
            interval.as_secs()
        )));
    }
    Ok(())
}

/// An error body of the token endpoint, as far as the progress cares.
#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

fn outcome_of(response: &HttpResponse) -> Poll {
    if response.status().as_u16() != 400 {
        return Poll::Done;
    }
    match serde_json::from_slice::<ErrorBody>(response.body()) {
        Ok(body) if body.error == "authorization_pending" => Poll::Pending,
        Ok(body) if body.error == "slow_down" => Poll::SlowDown,
        _ => Poll::Done,
    }
}

/// Polls the token endpoint (RFC 8628 §3.4) until the person has decided,
/// waiting with `sleep` between polls: `interval` seconds at first, 5 more
/// after each `slow_down` (§3.5). The oauth2 crate keeps that schedule; this
/// watches each answer to show progress, and gives up after
/// [`MAX_POLL_FAILURES`] polls in a row that could not reach the provider.
///
/// `access_denied` is [`Error::Denied`], `expired_token` (or the code's
/// `expires_in` running out) [`Error::Expired`].
pub async fn poll_for_token<S, SF>(
    http: &reqwest::Client,
    provider: &Provider,
    details: &DeviceAuthorization,
    progress: &Progress,
    sleep: S,
) -> Result<AccessToken, Error>
where
    S: Fn(Duration) -> SF,
    SF: Future<Output = ()>,
{
    let client = oauth_client(provider);
    let failures = Cell::new(0u32);
    let last_failure = RefCell::new(String::new());
    let give_up = Notify::new();

    let (failures, last_failure, give_up) = (&failures, &last_failure, &give_up);
    let observed = move |request: HttpRequest| async move {
        let result = http.call(request).await;
        match &result {
            Ok(response) => {
                failures.set(0);
                progress.polled(outcome_of(response));
            }
            Err(e) => {
                let why = match crate::error::find_reqwest(e) {
                    Some(inner) => describe_reqwest(inner),
                    None => crate::error::chain(e),
                };
                last_failure.replace(why);
                failures.set(failures.get() + 1);
                progress.polled(Poll::Unreachable);
                if failures.get() >= MAX_POLL_FAILURES {
                    give_up.notify_one();
                }
            }
        }
        result
    };
    let sleep = &sleep;
    let waiting = move |duration: Duration| async move {
        if failures.get() >= MAX_POLL_FAILURES {
            // Polling stops here; `give_up` ends it.
            std::future::pending::<()>().await;
        }
        progress.wait(sleep(duration)).await;
    };

    progress.start();
    let polling = client
        .exchange_device_access_token(details)
        .request_async(&observed, waiting, None);
    let result = tokio::select! {
        result = polling => result.map_err(|e| from_oauth(e, provider.token_url.as_str())),
        () = give_up.notified() => Err(Error::Unreachable {
            url: provider.token_url.to_string(),
            why: format!(
                "{} polls in a row failed; last: {}",
                failures.get(),
                last_failure.borrow()
            ),
        }),
    };
    progress.finish(result.is_ok());
    Ok(result?.access_token().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::{Progress, Style};

    #[test]
    fn absurd_waits_are_refused_not_panics() {
        let huge = Duration::from_secs(u64::MAX);
        assert!(check_timing(huge, Duration::from_secs(5)).is_err());
        assert!(check_timing(Duration::from_secs(600), huge).is_err());
        assert!(check_timing(Duration::from_secs(600), Duration::from_secs(5)).is_ok());
        // The progress survives them too, and a slow_down beyond them.
        let progress = Progress::new(Style::Plain, huge, huge);
        progress.polled(crate::progress::Poll::SlowDown);
    }
}
