//! Where the device's Ed25519 key lives. Phones plug in their platform keystore (Android
//! Keystore, iOS Keychain) through [`KeyStore`]; the CLI keeps the key in a file readable only
//! by its owner (0600). The SDK never writes the secret anywhere else.

use crate::error::SdkError;
use ed25519_dalek::{Signer, SigningKey};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Storage for the device's 32-byte Ed25519 secret. Implementations must persist `save`
/// durably before returning.
pub trait KeyStore: Send + Sync {
    /// The stored secret, or `None` before enrollment.
    fn load(&self) -> Result<Option<[u8; 32]>, SdkError>;
    fn save(&self, secret: &[u8; 32]) -> Result<(), SdkError>;
}

/// The key in a file with mode 0600, written atomically (temp file, fsync, rename).
pub struct FileKeyStore {
    path: PathBuf,
}

impl FileKeyStore {
    pub fn new(path: impl Into<PathBuf>) -> FileKeyStore {
        FileKeyStore { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl KeyStore for FileKeyStore {
    fn load(&self) -> Result<Option<[u8; 32]>, SdkError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SdkError::io("reading the device key", e)),
        };
        let bytes = hex::decode(text.trim())
            .map_err(|_| SdkError::Corrupt("the device key file is not hex".into()))?;
        let secret: [u8; 32] = bytes
            .try_into()
            .map_err(|_| SdkError::Corrupt("the device key file is not 32 bytes".into()))?;
        Ok(Some(secret))
    }

    fn save(&self, secret: &[u8; 32]) -> Result<(), SdkError> {
        let dir = self.path.parent().unwrap_or_else(|| Path::new("."));
        fs::create_dir_all(dir).map_err(|e| SdkError::io("creating the key folder", e))?;
        let tmp = self.path.with_extension("tmp");
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(&tmp)
            .map_err(|e| SdkError::io("creating the device key file", e))?;
        file.write_all(hex::encode(secret).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| SdkError::io("writing the device key", e))?;
        fs::rename(&tmp, &self.path).map_err(|e| SdkError::io("saving the device key", e))?;
        crate::fsutil::sync_dir(dir)
    }
}

/// A key held in memory only: for tests and for platforms that wrap their own storage.
#[derive(Default)]
pub struct MemoryKeyStore {
    secret: Mutex<Option<[u8; 32]>>,
}

impl KeyStore for MemoryKeyStore {
    fn load(&self) -> Result<Option<[u8; 32]>, SdkError> {
        Ok(*self.secret.lock().map_err(|_| SdkError::Poisoned)?)
    }

    fn save(&self, secret: &[u8; 32]) -> Result<(), SdkError> {
        *self.secret.lock().map_err(|_| SdkError::Poisoned)? = Some(*secret);
        Ok(())
    }
}

/// The device's signing identity, loaded from a [`KeyStore`].
pub struct DeviceKey {
    key: SigningKey,
}

impl DeviceKey {
    /// Loads the key, generating and saving a fresh one on first use.
    pub fn load_or_create(store: &dyn KeyStore) -> Result<DeviceKey, SdkError> {
        if let Some(secret) = store.load()? {
            return Ok(DeviceKey {
                key: SigningKey::from_bytes(&secret),
            });
        }
        let mut secret = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut secret);
        store.save(&secret)?;
        Ok(DeviceKey {
            key: SigningKey::from_bytes(&secret),
        })
    }

    /// Loads an existing key; `NotEnrolled` if there is none.
    pub fn load(store: &dyn KeyStore) -> Result<DeviceKey, SdkError> {
        let secret = store.load()?.ok_or(SdkError::NotEnrolled)?;
        Ok(DeviceKey {
            key: SigningKey::from_bytes(&secret),
        })
    }

    /// Base64 of the 32-byte public key, as `POST /api/v1/devices` takes it.
    pub fn public_key_base64(&self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.key.verifying_key().as_bytes())
    }

    /// Base64 of the Ed25519 signature over exactly `bytes`.
    pub fn sign_base64(&self, bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(self.key.sign(bytes).to_bytes())
    }

    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.key.verifying_key()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_private_and_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileKeyStore::new(dir.path().join("keys/device.key"));
        let first = DeviceKey::load_or_create(&store).unwrap();
        let again = DeviceKey::load_or_create(&store).unwrap();
        assert_eq!(first.public_key_base64(), again.public_key_base64());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(store.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_corrupt_key_file_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        fs::write(&path, "not hex").unwrap();
        let store = FileKeyStore::new(&path);
        assert!(matches!(
            DeviceKey::load_or_create(&store),
            Err(SdkError::Corrupt(_))
        ));
    }

    #[test]
    fn loading_before_enrollment_says_so() {
        assert!(matches!(
            DeviceKey::load(&MemoryKeyStore::default()),
            Err(SdkError::NotEnrolled)
        ));
    }
}
