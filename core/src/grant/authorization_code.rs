//! The authorization code grant's token request (RFC 6749 §4.1.3, RFC 7636 §4.5).

use async_trait::async_trait;

use super::{GrantContext, GrantHandler, TokenResponse};
use crate::client::{Client, GrantType};
use crate::error::{OAuthError, Reason};
use crate::params::Params;
use crate::storage::{CodeRecord, CodeTake};
use crate::token::{SecretKey, TokenKind};

/// Exchanges an authorization code for tokens.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthorizationCodeGrant;

/// Checks a taken code against the token request: a pure function of the
/// record, the client and the parameters.
pub fn check_code(
    record: &CodeRecord,
    client: &Client,
    params: &Params,
    now: time::OffsetDateTime,
) -> Result<(), OAuthError> {
    if record.expires_at <= now {
        return Err(
            OAuthError::invalid_grant("the authorization code has expired")
                .with_reason(Reason::CodeExpired),
        );
    }
    // §4.1.3: the code must have been issued to the authenticated client.
    if record.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        )
        .with_reason(Reason::CodeIssuedToAnotherClient));
    }
    // §4.1.3: redirect_uri must be identical to the one in the authorization request.
    match (&record.redirect_uri, params.get("redirect_uri")) {
        (Some(expected), Some(got)) if expected == got => {}
        // §5.2: a required parameter missing is `invalid_request`.
        (Some(_), None) => {
            return Err(OAuthError::invalid_request(
                "redirect_uri is required: the authorization request carried one (RFC 6749 Section 4.1.3)",
            )
            .with_reason(Reason::RedirectUriMissing));
        }
        (Some(_), Some(_)) => return Err(redirect_mismatch()),
        (None, Some(got)) if !client.accepts_redirect_uri(got) => {
            return Err(redirect_mismatch());
        }
        (None, _) => {}
    }
    // RFC 8707 §2: the token request may repeat the authorization
    // request's resource or omit it, never name another.
    crate::resource::check_unchanged(record.audience.as_ref(), params)?;
    // RFC 7636 §4.6; a verifier for a code issued without a challenge is a
    // downgrade attempt (RFC 9700 §2.1.1).
    match (&record.challenge, params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => challenge.verify(verifier),
        (Some(_), None) => Err(OAuthError::invalid_grant(
            "code_verifier is required for this code",
        )
        .with_reason(Reason::VerifierMissing)),
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "code_verifier sent but the code has no code_challenge",
        )
        .with_reason(Reason::VerifierWithoutChallenge)),
        (None, None) => Ok(()),
    }
}

fn redirect_mismatch() -> OAuthError {
    OAuthError::invalid_grant("redirect_uri does not match the authorization request")
        .with_reason(Reason::RedirectUriMismatch)
}

#[async_trait]
impl GrantHandler for AuthorizationCodeGrant {
    fn parameters(&self) -> Option<&'static [&'static str]> {
        // RFC 6749 §4.1.3, RFC 7636 §4.5.
        Some(&["code", "redirect_uri", "code_verifier"])
    }

    fn grant_type(&self) -> &str {
        GrantType::AUTHORIZATION_CODE
    }

    async fn exchange(
        &self,
        ctx: &GrantContext<'_>,
        client: &Client,
        params: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        let code = params.require("code")?;
        let code = SecretKey::parse(TokenKind::Code, code).ok_or_else(|| {
            OAuthError::invalid_grant("unknown authorization code").with_reason(Reason::CodeUnknown)
        })?;
        // At hand when the store keeps its codes in memory: no boxed future.
        let taken = match ctx.store.codes_at_hand() {
            Some(codes) => codes.take_code_now(code, ctx.now)?,
            None => ctx.store.take_code(code, ctx.now).await?,
        };
        let record = match taken {
            CodeTake::Taken(record) => record,
            CodeTake::AlreadyTaken => {
                // §4.1.2: a code used twice revokes every token issued from it.
                tracing::warn!(client = client.id.as_str(), grant = %code.grant, "authorization code replayed; revoking its grant");
                ctx.store.revoke_grant(code.grant).await?;
                return Err(
                    OAuthError::invalid_grant("the authorization code was already used")
                        .with_reason(Reason::CodeReplayed),
                );
            }
            _ => {
                return Err(
                    OAuthError::invalid_grant("unknown or expired authorization code")
                        .with_reason(Reason::CodeUnknown),
                );
            }
        };
        check_code(&record, client, params, ctx.now)?;
        // RFC 9449 §10: a code bound with `dpop_jkt` needs a proof by that key.
        if let Some(bound) = record.dpop_jkt.as_deref() {
            match ctx.dpop_jkt() {
                Some(jkt) if jkt == bound => {}
                Some(_) => {
                    return Err(OAuthError::new(
                        crate::error::ErrorCode::InvalidDpopProof,
                        "the DPoP proof is not by the key the code is bound to (dpop_jkt)",
                    )
                    .with_reason(Reason::DpopKeyMismatch));
                }
                None => {
                    return Err(OAuthError::invalid_grant(
                        "the code is bound to a DPoP key (dpop_jkt): send a DPoP proof",
                    )
                    .with_reason(Reason::DpopProofMissing));
                }
            }
        }
        let refresh = client
            .allows_grant(GrantType::REFRESH_TOKEN)
            .then_some(&record.scope);
        let minted = ctx
            .mint_tokens(
                code.grant,
                client,
                Some(&record.subject),
                &record.scope,
                refresh,
            )
            .with_audience(record.audience.clone())
            .signed()?;
        if !ctx.store.issue(code.grant, minted.records).await? {
            // This request took the code first, but a replay revoked the grant
            // before the tokens were stored: the first use still succeeds and
            // its tokens are dead at once, exactly as if the replay had come a
            // moment later (RFC 6749 §4.1.2: deny the *second* use, revoke
            // what the first got). Answering an error here would leave a race
            // with no winner at all.
            tracing::warn!(client = client.id.as_str(), grant = %code.grant, "grant revoked by a concurrent replay before its tokens were stored");
        }
        Ok(minted.response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{ClientId, SecretHash};
    use crate::error::ErrorCode;
    use crate::pkce::CodeChallenge;
    use crate::redirect::RedirectUri;
    use crate::scope::Scope;
    use crate::storage::Subject;
    use time::{Duration, OffsetDateTime};

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const NOW: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

    fn client(id: &str) -> Client {
        Client::confidential(ClientId::new(id).unwrap(), id, SecretHash::of("s"))
            .with_redirect_uri(RedirectUri::new("https://c.example/cb").unwrap())
    }

    fn record(redirect: Option<&str>, pkce: bool) -> CodeRecord {
        CodeRecord {
            client_id: ClientId::new("c").unwrap(),
            redirect_uri: redirect.map(str::to_owned),
            challenge: pkce.then(|| CodeChallenge::s256(VERIFIER)),
            subject: Subject::new("alice"),
            scope: Scope::parse("a").unwrap(),
            audience: None,
            expires_at: NOW + Duration::seconds(60),
            dpop_jkt: None,
        }
    }

    fn check(r: &CodeRecord, c: &Client, q: &str, now: OffsetDateTime) -> Option<ErrorCode> {
        check_code(r, c, &Params::parse(q).unwrap(), now)
            .err()
            .map(|e| e.code)
    }

    #[test]
    fn accepts_a_matching_request() {
        let q = format!("redirect_uri=https%3A%2F%2Fc.example%2Fcb&code_verifier={VERIFIER}");
        assert_eq!(
            check(
                &record(Some("https://c.example/cb"), true),
                &client("c"),
                &q,
                NOW
            ),
            None
        );
        assert_eq!(
            check(
                &record(None, true),
                &client("c"),
                &format!("code_verifier={VERIFIER}"),
                NOW
            ),
            None
        );
    }

    #[test]
    fn every_binding_is_enforced_rfc6749_4_1_3_rfc7636_4_6() {
        let v = format!("code_verifier={VERIFIER}");
        let r = record(Some("https://c.example/cb"), true);
        let with_uri = format!("redirect_uri=https%3A%2F%2Fc.example%2Fcb&{v}");
        // Expired (60 s default).
        assert_eq!(
            check(&r, &client("c"), &with_uri, NOW + Duration::seconds(60)),
            Some(ErrorCode::InvalidGrant)
        );
        // Another client.
        assert_eq!(
            check(&r, &client("d"), &with_uri, NOW),
            Some(ErrorCode::InvalidGrant)
        );
        // redirect_uri omitted although sent in the authorization request:
        // a required parameter missing (§5.2); different: the grant's.
        assert_eq!(
            check(&r, &client("c"), &v, NOW),
            Some(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            check(
                &r,
                &client("c"),
                &format!("redirect_uri=https%3A%2F%2Fc.example%2Fcb2&{v}"),
                NOW
            ),
            Some(ErrorCode::InvalidGrant)
        );
        // PKCE: missing, wrong, malformed, and downgrade.
        assert_eq!(
            check(
                &r,
                &client("c"),
                "redirect_uri=https%3A%2F%2Fc.example%2Fcb",
                NOW
            ),
            Some(ErrorCode::InvalidGrant)
        );
        let wrong = format!(
            "redirect_uri=https%3A%2F%2Fc.example%2Fcb&code_verifier={}",
            "x".repeat(43)
        );
        assert_eq!(
            check(&r, &client("c"), &wrong, NOW),
            Some(ErrorCode::InvalidGrant)
        );
        // Malformed cannot match either: `invalid_grant` (RFC 7636 §4.6).
        let bad = "redirect_uri=https%3A%2F%2Fc.example%2Fcb&code_verifier=short";
        assert_eq!(
            check(&r, &client("c"), bad, NOW),
            Some(ErrorCode::InvalidGrant)
        );
        assert_eq!(
            check(&record(None, false), &client("c"), &v, NOW),
            Some(ErrorCode::InvalidGrant)
        );
        assert_eq!(check(&record(None, false), &client("c"), "", NOW), None);
    }

    fn reason(r: &CodeRecord, c: &Client, q: &str, now: OffsetDateTime) -> Option<Reason> {
        check_code(r, c, &Params::parse(q).unwrap(), now)
            .err()
            .map(|e| e.reason())
    }

    #[test]
    fn each_invalid_grant_cause_keeps_its_reason() {
        // All of these but the missing `redirect_uri` (`invalid_request`)
        // answer the same `invalid_grant` on the wire (RFC 6749 §5.2); the
        // reason tells them apart in logs and tests.
        let v = format!("code_verifier={VERIFIER}");
        let r = record(Some("https://c.example/cb"), true);
        let uri = "redirect_uri=https%3A%2F%2Fc.example%2Fcb";
        let with_uri = format!("{uri}&{v}");
        let cases = [
            (
                reason(&r, &client("c"), &with_uri, NOW + Duration::seconds(60)),
                Reason::CodeExpired,
            ),
            (
                reason(&r, &client("d"), &with_uri, NOW),
                Reason::CodeIssuedToAnotherClient,
            ),
            (
                reason(&r, &client("c"), &v, NOW),
                Reason::RedirectUriMissing,
            ),
            (
                reason(
                    &r,
                    &client("c"),
                    &format!("redirect_uri=https%3A%2F%2Fc.example%2Fcb2&{v}"),
                    NOW,
                ),
                Reason::RedirectUriMismatch,
            ),
            (reason(&r, &client("c"), uri, NOW), Reason::VerifierMissing),
            (
                reason(
                    &r,
                    &client("c"),
                    &format!("{uri}&code_verifier={}", "x".repeat(43)),
                    NOW,
                ),
                Reason::VerifierMismatch,
            ),
            (
                reason(&record(None, false), &client("c"), &v, NOW),
                Reason::VerifierWithoutChallenge,
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, Some(want));
        }
    }
}
