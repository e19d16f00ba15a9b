//! What can go wrong, each as one line for a person.

use std::error::Error as StdError;

use oauth2::{ErrorResponse, RequestTokenError, StandardErrorResponse};

/// Why photo-cli stopped. Every variant displays as one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The provider could not be reached (refused, timed out, DNS, ...).
    #[error("cannot reach the provider at {url}: {why}")]
    Unreachable {
        /// What was being requested.
        url: String,
        /// Why it failed.
        why: String,
    },
    /// The provider's metadata cannot be used (RFC 8414).
    #[error("the provider's metadata is unusable: {0}")]
    Metadata(String),
    /// The person denied the request in the browser (`access_denied`).
    #[error("access denied: the request was declined in the browser")]
    Denied,
    /// Nobody approved before the code expired (`expired_token`).
    #[error("the code expired before it was approved; run photo-cli again")]
    Expired,
    /// Any other OAuth error the provider answered with.
    #[error("the provider refused: {0}")]
    OAuth(String),
    /// The provider answered something that is not what the protocol says.
    #[error("the provider's answer could not be read: {0}")]
    BadResponse(String),
    /// The photos API did not accept the token.
    #[error("the photos API refused: {0}")]
    Api(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// An error and its sources, as one line (`outer: inner: innermost`),
/// without repeating a message that the previous one already contains.
pub(crate) fn chain(error: &dyn StdError) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// The most photo-cli reads of an answer it parses itself (the metadata,
/// the photo list): more is not what a provider sends, and is not read
/// into memory.
pub(crate) const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// `response`'s body, at most [`MAX_ANSWER_BYTES`]; else why not.
pub(crate) async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe_reqwest(&e))? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!(
                "the answer is larger than {MAX_ANSWER_BYTES} bytes"
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A transport failure of reqwest, briefly.
pub(crate) fn describe_reqwest(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("no answer within {} s", crate::HTTP_TIMEOUT.as_secs());
    }
    // reqwest's own message names the URL, which the caller names already.
    match error.source() {
        Some(source) => chain(source),
        None => error.to_string(),
    }
}

/// Maps an oauth2 request failure at `url` to an [`Error`]: the RFC 8628
/// outcomes a person must act on get their own variants.
pub(crate) fn from_oauth<RE, T>(
    error: RequestTokenError<RE, StandardErrorResponse<T>>,
    url: &str,
) -> Error
where
    RE: StdError + 'static,
    T: oauth2::ErrorResponseType + AsRef<str> + 'static,
    StandardErrorResponse<T>: ErrorResponse,
{
    match error {
        RequestTokenError::ServerResponse(response) => {
            let code = response.error().as_ref();
            match code {
                "access_denied" => Error::Denied,
                "expired_token" => Error::Expired,
                _ => {
                    let mut text = code.to_owned();
                    if let Some(description) = response.error_description() {
                        text.push_str(": ");
                        text.push_str(description);
                    }
                    Error::OAuth(text)
                }
            }
        }
        RequestTokenError::Request(e) => {
            let why = match find_reqwest(&e) {
                Some(inner) => describe_reqwest(inner),
                None => chain(&e),
            };
            Error::Unreachable {
                url: url.to_owned(),
                why,
            }
        }
        RequestTokenError::Parse(e, _body) => Error::BadResponse(format!("{url}: {}", chain(&e))),
        RequestTokenError::Other(text) => Error::BadResponse(format!("{url}: {text}")),
    }
}

/// The reqwest error somewhere in a source chain, if any.
pub(crate) fn find_reqwest<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a reqwest::Error> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<reqwest::Error>() {
            return Some(found);
        }
        if let Some(found) = e.downcast_ref::<Box<reqwest::Error>>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}
