//! Short-lived access tokens: HS256 JWTs, verified with an explicit algorithm allow-list so a
//! token claiming `alg: none` or an asymmetric algorithm is refused before its claims are read.

use crate::error::{ApiError, ErrorCode};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

const ISSUER: &str = "fieldproof";

/// What an access token says about its bearer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Session (refresh-token family) the token was issued in; logout revokes it.
    pub sid: String,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Clone)]
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub ttl_secs: i64,
}

impl AccessTokens {
    pub fn new(secret: &SecretString, ttl_secs: i64) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 30;
        AccessTokens {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
            ttl_secs,
        }
    }

    pub fn issue(
        &self,
        user_id: &str,
        session_id: &str,
        now: OffsetDateTime,
    ) -> Result<String, ApiError> {
        let iat = now.unix_timestamp();
        let claims = Claims {
            sub: user_id.to_owned(),
            sid: session_id.to_owned(),
            iss: ISSUER.to_owned(),
            iat,
            exp: iat + self.ttl_secs,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => ApiError::new(ErrorCode::TokenExpired),
                _ => ApiError::new(ErrorCode::TokenInvalid).with_source(e),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> AccessTokens {
        AccessTokens::new(&SecretString::from("k".repeat(40)), 900)
    }

    #[test]
    fn an_issued_token_verifies_and_carries_its_session() {
        let t = tokens();
        let jwt = t.issue("u1", "s1", OffsetDateTime::now_utc()).unwrap();
        let claims = t.verify(&jwt).unwrap();
        assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("u1", "s1"));
    }

    #[test]
    fn an_old_token_is_expired_not_invalid() {
        let t = tokens();
        let jwt = t
            .issue(
                "u1",
                "s1",
                OffsetDateTime::now_utc() - time::Duration::hours(1),
            )
            .unwrap();
        assert_eq!(t.verify(&jwt).unwrap_err().code, ErrorCode::TokenExpired);
    }
}
