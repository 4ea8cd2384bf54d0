//! Argon2id password hashing, run off the async threads (it is deliberately slow).

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use secrecy::{ExposeSecret, SecretString};

/// Hash a password into a PHC string.
pub async fn hash(password: SecretString) -> anyhow::Result<String> {
    actix_web::rt::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
    })
    .await
    .context("password hashing task")?
}

/// Check a password against a stored PHC string. With no stored hash (unknown user) a dummy
/// hash is verified anyway so response time does not reveal which usernames exist.
pub async fn verify(password: SecretString, stored: Option<String>) -> anyhow::Result<bool> {
    actix_web::rt::task::spawn_blocking(move || {
        let phc = stored.as_deref().unwrap_or(DUMMY_HASH);
        let parsed = PasswordHash::new(phc).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
        let ok = Argon2::default()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok();
        Ok(ok && stored.is_some())
    })
    .await
    .context("password verification task")?
}

/// Argon2id (default parameters) of a random string nobody knows.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$gZiV/M1gPc22ElAH/Jh1Hw$CWOrkoo7oJBQ/iyh7uJ0LO2aLEfrHwTWllSAxT0zRno";

/// The rules a new password must meet.
pub fn check_strength(password: &str) -> Result<(), &'static str> {
    if password.chars().count() < 10 {
        return Err("at least 10 characters");
    }
    if password.len() > 1024 {
        return Err("at most 1024 bytes");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn a_hash_verifies_only_its_own_password() {
        let stored = hash(SecretString::from("correct horse")).await.unwrap();
        assert!(
            verify(SecretString::from("correct horse"), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify(SecretString::from("wrong horse"), Some(stored))
                .await
                .unwrap()
        );
        assert!(!verify(SecretString::from("anything"), None).await.unwrap());
    }
}
