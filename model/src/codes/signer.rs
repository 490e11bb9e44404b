//! Device signatures (ES256 over P-256) through a trait: on a phone the private key lives in the
//! Android Keystore or the iOS Secure Enclave and the shell signs; the core never sees the key.
//! [`SoftwareSigner`] holds a key in memory, for tests, the CLI and the server's own keys.
//!
//! Low-S only (issue 14): an ECDSA signature `(r, s)` has a twin `(r, n − s)` that verifies as
//! well, so anyone holding a signed record could re-sign nothing and still make a second, different
//! record that verifies. [`verify_es256`], the one ES256 check of the project, refuses the high
//! form; every signing path goes through [`sign_normalised`], which brings whatever a signer
//! returned (a phone's Keystore or Secure Enclave gives either form) to the low form.

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

    /// What a permit step signed through this signer records about the person's presence, inside
    /// the signed bytes (format `weldguard/permit-sig/2`): `Some(true)` only when this signer
    /// signs nothing without the key store having verified the person's presence (biometric or
    /// PIN), `Some(false)` otherwise. `None` asks for the legacy format `/1`, which records
    /// nothing about presence: only the replay of a stored `/1` signature answers that.
    fn presence_claim(&self) -> Option<bool> {
        Some(false)
    }
}

/// A reference signs as what it refers to.
impl<T: DeviceSigner + ?Sized> DeviceSigner for &T {
    fn public_key(&self) -> Vec<u8> {
        (**self).public_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        (**self).sign(message)
    }

    fn presence_claim(&self) -> Option<bool> {
        (**self).presence_claim()
    }
}

/// A signer whose every signature is made with the person present, on someone's word: a software
/// key cannot verify presence itself, so whoever wraps it (a test, the CLI with `--present`, "the
/// operator confirms the person is present") vouches for it. A phone's key store says so through
/// [`crate::app::signing::PersonSigner`] instead.
pub struct PresenceConfirmed<S>(pub S);

impl<S: DeviceSigner> DeviceSigner for PresenceConfirmed<S> {
    fn public_key(&self) -> Vec<u8> {
        self.0.public_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.0.sign(message)
    }

    fn presence_claim(&self) -> Option<bool> {
        Some(true)
    }
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
        Ok(signature.normalize_s().to_bytes().to_vec())
    }
}

/// Sign `message` with `signer` and hand back the signature in low-S form: the one way the core
/// signs (permit steps, permit codes, inspections, presentations, token refreshes, issuer keys).
/// A signer may return either form; one that returns anything else than a 64-byte `r || s`
/// signature of `message` by its own public key is refused here, before the signature goes
/// anywhere.
pub fn sign_normalised(signer: &dyn DeviceSigner, message: &[u8]) -> Result<Vec<u8>, SignerError> {
    let raw = signer.sign(message)?;
    let signature = Signature::from_slice(&raw).map_err(|_| {
        SignerError(format!(
            "the device key returned {} bytes that are not a 64-byte r || s ES256 signature",
            raw.len()
        ))
    })?;
    let low = signature.normalize_s().to_bytes().to_vec();
    if !verify_es256(&signer.public_key(), message, &low) {
        return Err(SignerError(
            "the device key's signature does not verify with its own public key".into(),
        ));
    }
    Ok(low)
}

/// Check an ES256 signature (64-byte `r || s`) by a SEC1-encoded P-256 public key. Only the
/// low-S form is valid (`s ≤ n/2`); its high-S twin `n − s` is refused. Any malformed key or
/// signature is simply "not valid".
pub fn verify_es256(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = VerifyingKey::from_sec1_bytes(public_key) else {
        return false;
    };
    let Ok(signature) = Signature::from_slice(signature) else {
        return false;
    };
    if signature.normalize_s() != signature {
        return false;
    }
    key.verify(message, &signature).is_ok()
}

/// The other-S twin of a 64-byte ES256 signature: `(r, n − s)`, which the bare ECDSA equation
/// also accepts. For tests that attack the low-S rule (a low signature becomes its high twin and
/// back); `None` when the bytes are not a signature.
pub fn es256_twin(signature: &[u8]) -> Option<Vec<u8>> {
    let signature = Signature::from_slice(signature).ok()?;
    Signature::from_scalars(signature.r(), -signature.s())
        .ok()
        .map(|twin| twin.to_bytes().to_vec())
}

/// Whether a 64-byte ES256 signature is in low-S form (`s ≤ n/2`); `false` when malformed.
pub fn es256_is_low_s(signature: &[u8]) -> bool {
    Signature::from_slice(signature).is_ok_and(|s| s.normalize_s() == s)
}

/// A signer that always answers in the high-S form, as a phone's key may: tests check that every
/// signing path still makes signatures that verify.
#[cfg(test)]
pub(crate) struct HighSSigner(pub SoftwareSigner);

#[cfg(test)]
impl DeviceSigner for HighSSigner {
    fn public_key(&self) -> Vec<u8> {
        self.0.public_key()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let low = self.0.sign(message)?;
        let high = es256_twin(&low).ok_or_else(|| SignerError("no twin".into()))?;
        assert!(!es256_is_low_s(&high));
        Ok(high)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_high_s_twin_of_a_valid_signature_is_refused() {
        let signer = SoftwareSigner::generate().unwrap();
        for i in 0..32u8 {
            let message = [b'p', i];
            let low = signer.sign(&message).unwrap();
            let high = es256_twin(&low).unwrap();
            assert_ne!(low, high);
            assert_eq!(low[..32], high[..32], "same r");
            assert_eq!(es256_twin(&high).unwrap(), low, "the twin's twin");
            assert!(es256_is_low_s(&low) && !es256_is_low_s(&high));
            // The bare ECDSA equation accepts both: the twin is a real signature...
            let key = VerifyingKey::from_sec1_bytes(&signer.public_key()).unwrap();
            assert!(
                key.verify(&message, &Signature::from_slice(&high).unwrap())
                    .is_ok()
            );
            // ...and only the low form is valid here.
            assert!(verify_es256(&signer.public_key(), &message, &low));
            assert!(!verify_es256(&signer.public_key(), &message, &high));
        }
        assert_eq!(es256_twin(&[0; 64]), None);
        assert_eq!(es256_twin(&[1; 10]), None);
    }

    #[test]
    fn the_software_signer_always_signs_low_s() {
        // Without normalisation about half of these would be high.
        let signer = SoftwareSigner::generate().unwrap();
        for i in 0..64u32 {
            let sig = signer.sign(&i.to_be_bytes()).unwrap();
            assert!(es256_is_low_s(&sig), "message {i}");
        }
    }

    #[test]
    fn sign_normalised_turns_a_phones_high_s_answer_into_the_valid_form() {
        let phone = HighSSigner(SoftwareSigner::generate().unwrap());
        let raw = phone.sign(b"approve").unwrap();
        assert!(!verify_es256(&phone.public_key(), b"approve", &raw));
        let sig = sign_normalised(&phone, b"approve").unwrap();
        assert!(es256_is_low_s(&sig));
        assert!(verify_es256(&phone.public_key(), b"approve", &sig));
        assert_eq!(es256_twin(&raw).unwrap(), sig);
    }

    /// A broken shell key: answers DER, a truncated signature, or signs with another key.
    struct BrokenKey(SoftwareSigner, &'static str);

    impl DeviceSigner for BrokenKey {
        fn public_key(&self) -> Vec<u8> {
            self.0.public_key()
        }

        fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
            match self.1 {
                "short" => Ok(self.0.sign(message)?[..63].to_vec()),
                "zero" => Ok(vec![0; 64]),
                "other" => SoftwareSigner::generate()?.sign(message),
                _ => Err(SignerError("user cancelled".into())),
            }
        }
    }

    #[test]
    fn sign_normalised_refuses_what_is_not_a_signature_of_the_message_by_the_key() {
        for (kind, expected) in [
            ("short", "63 bytes"),
            ("zero", "64 bytes"),
            ("other", "does not verify"),
            ("cancel", "user cancelled"),
        ] {
            let key = BrokenKey(SoftwareSigner::generate().unwrap(), kind);
            let err = sign_normalised(&key, b"m").unwrap_err();
            assert!(err.0.contains(expected), "{kind}: {err}");
        }
    }

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
