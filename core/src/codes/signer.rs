//! Device signatures (ES256 over P-256) through a trait: on a phone the private key lives in the
//! Android Keystore or the iOS Secure Enclave and the shell signs; the core never sees the key.
//! [`SoftwareSigner`] holds a key in memory, for tests, the CLI and the server's own keys.

use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};

/// Signing failed on the device (key missing, user cancelled, hardware error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device signing failed: {0}")]
pub struct SignerError(pub String);

/// Something that signs with a device key, ES256 (ECDSA P-256 with SHA-256).
pub trait DeviceSigner: Send + Sync {
    /// The public key, SEC1-encoded and compressed (33 bytes).
    fn public_key(&self) -> Vec<u8>;
    /// Sign `message` (the signer hashes it with SHA-256); returns the 64-byte `r || s` signature.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError>;
}

/// A P-256 key held in memory.
pub struct SoftwareSigner {
    key: SigningKey,
}

impl SoftwareSigner {
    /// A new random key from the operating system's generator.
    pub fn generate() -> Result<Self, SignerError> {
        let mut bytes = [0u8; 32];
        loop {
            getrandom::fill(&mut bytes).map_err(|e| SignerError(e.to_string()))?;
            if let Ok(key) = SigningKey::from_slice(&bytes) {
                return Ok(Self { key });
            }
        }
    }

    /// A key from its 32-byte secret scalar.
    pub fn from_secret(secret: &[u8]) -> Result<Self, SignerError> {
        SigningKey::from_slice(secret)
            .map(|key| Self { key })
            .map_err(|_| SignerError("not a valid P-256 secret key".into()))
    }

    /// The 32-byte secret scalar (for the CLI's key files; a phone never has this).
    pub fn secret(&self) -> Vec<u8> {
        self.key.to_bytes().to_vec()
    }
}

impl DeviceSigner for SoftwareSigner {
    fn public_key(&self) -> Vec<u8> {
        self.key
            .verifying_key()
            .to_sec1_point(true)
            .as_bytes()
            .to_vec()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let signature: Signature = self.key.sign(message);
        Ok(signature.to_bytes().to_vec())
    }
}

/// Check an ES256 signature (64-byte `r || s`) by a SEC1-encoded P-256 public key.
/// Any malformed key or signature is simply "not valid".
pub fn verify_es256(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = VerifyingKey::from_sec1_bytes(public_key) else {
        return false;
    };
    let Ok(signature) = Signature::from_slice(signature) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies() {
        let signer = SoftwareSigner::generate().unwrap();
        let sig = signer.sign(b"permit 42 approved").unwrap();
        assert_eq!(sig.len(), 64);
        assert_eq!(signer.public_key().len(), 33);
        assert!(verify_es256(
            &signer.public_key(),
            b"permit 42 approved",
            &sig
        ));
        assert!(!verify_es256(
            &signer.public_key(),
            b"permit 43 approved",
            &sig
        ));
        let restored = SoftwareSigner::from_secret(&signer.secret()).unwrap();
        assert_eq!(restored.public_key(), signer.public_key());
    }

    #[test]
    fn garbage_keys_and_signatures_are_not_valid() {
        assert!(!verify_es256(&[], b"x", &[0; 64]));
        assert!(!verify_es256(&[2; 33], b"x", &[0; 64]));
        let signer = SoftwareSigner::generate().unwrap();
        assert!(!verify_es256(&signer.public_key(), b"x", &[1; 10]));
        assert!(SoftwareSigner::from_secret(&[0; 32]).is_err());
    }
}
