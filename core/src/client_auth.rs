//! Client authentication at back-channel endpoints (RFC 6749 §2.3).

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::client::{AuthMethod, Client, ClientId, ClientKind, ClientRegistry};
use crate::error::{OAuthError, Reason};
use crate::params::Params;
use crate::token::TokenHash;

/// What the client presented to identify itself.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientCredentials {
    /// HTTP Basic (RFC 6749 §2.3.1).
    Basic {
        /// The client id.
        id: ClientId,
        /// The hash of the secret as presented (the text is not kept).
        secret: TokenHash,
    },
    /// `client_id` + `client_secret` in the body (RFC 6749 §2.3.1).
    Post {
        /// The client id.
        id: ClientId,
        /// The hash of the secret as presented (the text is not kept).
        secret: TokenHash,
    },
    /// `client_id` alone: a public client (RFC 6749 §3.2.1).
    None {
        /// The client id.
        id: ClientId,
    },
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (m, id) = self.parts();
        write!(f, "ClientCredentials({}, {id})", m.as_str())
    }
}

impl ClientCredentials {
    /// Extracts credentials from the `Authorization` header and the form.
    ///
    /// More than one method at once is `invalid_request` (RFC 6749 §2.3); no
    /// credentials at all, or a malformed Basic header, is `invalid_client`.
    pub fn extract(authorization: Option<&str>, params: &Params) -> Result<Self, OAuthError> {
        if let Some(basic) = authorization.and_then(basic_payload) {
            let (id, secret) = decode_basic(basic)
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
            if params.contains("client_secret") {
                return Err(OAuthError::invalid_request(
                    "use only one client authentication method",
                ));
            }
            if params
                .get("client_id")
                .is_some_and(|form_id| form_id != id.as_str())
            {
                return Err(OAuthError::invalid_request(
                    "client_id does not match the Authorization header",
                ));
            }
            return Ok(Self::Basic { id, secret });
        }
        let id = params.get("client_id").map(|id| {
            ClientId::new(id).ok_or_else(|| OAuthError::invalid_client("malformed client_id"))
        });
        match (id, params.get("client_secret")) {
            (Some(id), Some(secret)) => Ok(Self::Post {
                id: id?,
                secret: TokenHash::of(secret),
            }),
            (Some(id), None) => Ok(Self::None { id: id? }),
            (None, Some(_)) => Err(OAuthError::invalid_request(
                "client_secret without client_id",
            )),
            (None, None) => Err(OAuthError::invalid_client("client authentication required")
                .with_reason(Reason::ClientAuthenticationMissing)),
        }
    }

    fn parts(&self) -> (AuthMethod, &ClientId) {
        match self {
            Self::Basic { id, .. } => (AuthMethod::ClientSecretBasic, id),
            Self::Post { id, .. } => (AuthMethod::ClientSecretPost, id),
            Self::None { id } => (AuthMethod::None, id),
        }
    }

    /// The claimed client id.
    pub fn client_id(&self) -> &ClientId {
        self.parts().1
    }

    /// Checks the credentials against the registry: the client exists, is
    /// registered for this method, and the secret matches (constant time).
    pub async fn authenticate(
        &self,
        registry: &(impl ClientRegistry + ?Sized),
    ) -> Result<Arc<Client>, OAuthError> {
        let (method, id) = self.parts();
        let fail = |why: &str| {
            tracing::info!(client = %id, method = method.as_str(), reason = why, "client authentication failed");
            OAuthError::invalid_client("client authentication failed")
        };
        let client = crate::client::lookup_client(registry, id)
            .await?
            .ok_or_else(|| fail("unknown client"))?;
        if !client.auth_methods.contains(&method) {
            return Err(fail("method not registered for client"));
        }
        match (&client.kind, self) {
            (ClientKind::Public, Self::None { .. }) => Ok(client),
            (
                ClientKind::Confidential { secret: hash },
                Self::Basic { secret, .. } | Self::Post { secret, .. },
            ) => {
                if hash.matches(secret) {
                    Ok(client)
                } else {
                    Err(fail("wrong secret").with_reason(Reason::ClientSecretMismatch))
                }
            }
            _ => Err(fail("client type does not match method")),
        }
    }
}

fn basic_payload(header: &str) -> Option<&str> {
    let (scheme, rest) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
}

/// RFC 6749 §2.3.1: id and secret are form-urlencoded before being joined with `:`.
fn decode_basic(payload: &str) -> Option<(ClientId, TokenHash)> {
    // Usual credentials fit on the stack; longer ones get a heap buffer.
    let mut stack = [0u8; 256];
    let heap;
    let raw: &[u8] = match STANDARD.decode_slice(payload, &mut stack) {
        Ok(n) => stack.get(..n)?,
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
            heap = STANDARD.decode(payload).ok()?;
            &heap
        }
        Err(_) => return None,
    };
    let text = std::str::from_utf8(raw).ok()?;
    // One pass finds the `:` and whether each side needs form-decoding.
    let mut colon = None;
    let mut escaped = [false; 2];
    for (i, &b) in text.as_bytes().iter().enumerate() {
        match b {
            b':' if colon.is_none() => colon = Some(i),
            b'+' | b'%' => escaped[usize::from(colon.is_some())] = true,
            _ => {}
        }
    }
    // `:` is ASCII, so both ends are char boundaries.
    let colon = colon?;
    let (id, secret) = (text.get(..colon)?, text.get(colon + 1..)?);
    let id = match escaped[0] {
        true => ClientId::new(form_decode(id)?)?,
        false => ClientId::new(id)?,
    };
    // Hashed where it was decoded: the text is never copied.
    let secret = match escaped[1] {
        true => TokenHash::of(&form_decode(secret)?),
        false => TokenHash::of(secret),
    };
    Some((id, secret))
}

fn form_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.bytes().any(|b| b == b'+' || b == b'%') {
        // Nothing to decode (the usual case for generated ids and secrets).
        return Some(Cow::Borrowed(s));
    }
    let replaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&replaced)
        .decode_utf8()
        .ok()
        .map(|c| Cow::Owned(c.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    fn params(s: &str) -> Params {
        Params::parse(s).unwrap_or_default()
    }

    #[test]
    fn basic_is_form_urldecoded_rfc6749_2_3_1() {
        let c = ClientCredentials::extract(Some(&basic("my%20app", "a%2Bb+c")), &params(""));
        match c {
            Ok(ClientCredentials::Basic { id, secret }) => {
                assert_eq!(id.as_str(), "my app");
                assert_eq!(secret, TokenHash::of("a+b c"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn long_basic_credentials_decode_too() {
        let secret = "s".repeat(1000);
        match ClientCredentials::extract(Some(&basic("app", &secret)), &params("")) {
            Ok(ClientCredentials::Basic { id, secret: got }) => {
                assert_eq!(id.as_str(), "app");
                assert_eq!(got, TokenHash::of(&secret));
            }
            other => panic!("{other:?}"),
        }
        let e = ClientCredentials::extract(Some("Basic !!!!"), &params("")).err();
        assert_eq!(e.map(|e| e.code), Some(ErrorCode::InvalidClient));
    }

    #[test]
    fn two_methods_at_once_is_invalid_request_rfc6749_2_3() {
        let e = ClientCredentials::extract(
            Some(&basic("a", "b")),
            &params("client_id=a&client_secret=b"),
        )
        .err();
        assert_eq!(e.map(|e| e.code), Some(ErrorCode::InvalidRequest));
    }

    #[test]
    fn mismatched_ids_are_invalid_request() {
        let e = ClientCredentials::extract(Some(&basic("a", "b")), &params("client_id=z")).err();
        assert_eq!(e.map(|e| e.code), Some(ErrorCode::InvalidRequest));
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        for h in ["Basic !!!", "Basic bm9jb2xvbg==", "basic %%%"] {
            let e = ClientCredentials::extract(Some(h), &params("")).err();
            assert_eq!(e.map(|e| e.code), Some(ErrorCode::InvalidClient), "{h}");
        }
    }

    #[test]
    fn post_and_none() {
        assert_eq!(
            ClientCredentials::extract(None, &params("client_id=a&client_secret=b"))
                .map(|c| c.parts().0),
            Ok(AuthMethod::ClientSecretPost)
        );
        assert_eq!(
            ClientCredentials::extract(None, &params("client_id=a")).map(|c| c.parts().0),
            Ok(AuthMethod::None)
        );
        assert_eq!(
            ClientCredentials::extract(None, &params(""))
                .err()
                .map(|e| e.code),
            Some(ErrorCode::InvalidClient)
        );
        assert_eq!(
            ClientCredentials::extract(None, &params("client_secret=x"))
                .err()
                .map(|e| e.code),
            Some(ErrorCode::InvalidRequest)
        );
    }

    #[test]
    fn debug_hides_secret() {
        let c = ClientCredentials::Post {
            id: ClientId::new("a").unwrap_or_else(|| unreachable!()),
            secret: TokenHash::of("hunter2"),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
