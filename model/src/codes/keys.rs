//! Issuer keys: the software Ed25519 or P-256 keys that sign machine labels and welder credentials,
//! their short key ids (`kid`), and the small JSON key file the CLI and the server keep them in.

#[cfg(any(test, feature = "issuer"))]
use ed25519_dalek::Signer as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::KeyError;
use super::signer::verify_es256;
#[cfg(any(test, feature = "issuer"))]
use super::signer::{DeviceSigner, SoftwareSigner, sign_normalised};

/// Length of a key id in bytes (the first bytes of SHA-256 over the public key).
pub const KID_LEN: usize = 4;

/// A signature algorithm for issuer keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IssuerAlg {
    /// Ed25519 (COSE algorithm -8).
    EdDSA,
    /// ECDSA P-256 with SHA-256 (COSE algorithm -7).
    ES256,
}

impl IssuerAlg {
    /// The name used in key and trust files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            IssuerAlg::EdDSA => "EdDSA",
            IssuerAlg::ES256 => "ES256",
        }
    }

    pub(crate) fn cose(self) -> coset::iana::Algorithm {
        match self {
            IssuerAlg::EdDSA => coset::iana::Algorithm::EdDSA,
            IssuerAlg::ES256 => coset::iana::Algorithm::ES256,
        }
    }
}

/// The key id of a public key: the first [`KID_LEN`] bytes of its SHA-256.
pub fn kid_of(public_key: &[u8]) -> Vec<u8> {
    Sha256::digest(public_key)
        .iter()
        .take(KID_LEN)
        .copied()
        .collect()
}

/// Lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parse hex (either case, no separators).
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect()
}

/// Check an issuer signature over `message`. Malformed keys or signatures are simply "not valid".
pub fn verify_issuer_signature(
    alg: IssuerAlg,
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> bool {
    match alg {
        IssuerAlg::ES256 => verify_es256(public_key, message, signature),
        IssuerAlg::EdDSA => {
            let Ok(key_bytes) = <[u8; 32]>::try_from(public_key) else {
                return false;
            };
            let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&key_bytes) else {
                return false;
            };
            let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
                return false;
            };
            key.verify_strict(message, &signature).is_ok()
        }
    }
}

/// Check that `public_key` is a valid key for `alg`.
pub fn check_public_key(alg: IssuerAlg, public_key: &[u8]) -> Result<(), KeyError> {
    let ok = match alg {
        IssuerAlg::ES256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key).is_ok(),
        IssuerAlg::EdDSA => <[u8; 32]>::try_from(public_key)
            .ok()
            .and_then(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).ok())
            .is_some(),
    };
    if ok {
        Ok(())
    } else {
        Err(KeyError::InvalidKey(format!(
            "not a {} public key",
            alg.name()
        )))
    }
}

#[cfg(any(test, feature = "issuer"))]
enum Secret {
    Ed(ed25519_dalek::SigningKey),
    P256(SoftwareSigner),
}

#[cfg(any(test, feature = "issuer"))]
/// An issuer's private key, held in memory.
pub struct IssuerKey {
    secret: Secret,
}

#[cfg(any(test, feature = "issuer"))]
impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKey")
            .field("alg", &self.alg())
            .field("kid", &to_hex(&self.kid()))
            .finish_non_exhaustive()
    }
}

#[cfg(any(test, feature = "issuer"))]
/// The JSON key file: `{"format":"weldguard-issuer-key","version":1,"alg":"EdDSA","kid":"…",
/// "public_key":"hex","secret_key":"hex"}`. Keep it private.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerKeyFile {
    pub format: String,
    pub version: u32,
    pub alg: IssuerAlg,
    pub kid: String,
    pub public_key: String,
    pub secret_key: String,
}

#[cfg(any(test, feature = "issuer"))]
const KEY_FILE_FORMAT: &str = "weldguard-issuer-key";

#[cfg(any(test, feature = "issuer"))]
impl IssuerKey {
    /// A new random key from the operating system's generator.
    pub fn generate(alg: IssuerAlg) -> Result<Self, KeyError> {
        match alg {
            IssuerAlg::ES256 => SoftwareSigner::generate()
                .map(|s| Self {
                    secret: Secret::P256(s),
                })
                .map_err(|e| KeyError::Random(e.0)),
            IssuerAlg::EdDSA => {
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
                Ok(Self {
                    secret: Secret::Ed(ed25519_dalek::SigningKey::from_bytes(&bytes)),
                })
            }
        }
    }

    /// A key from its 32-byte secret (Ed25519 seed or P-256 scalar).
    pub fn from_secret(alg: IssuerAlg, secret: &[u8]) -> Result<Self, KeyError> {
        match alg {
            IssuerAlg::ES256 => SoftwareSigner::from_secret(secret)
                .map(|s| Self {
                    secret: Secret::P256(s),
                })
                .map_err(|e| KeyError::InvalidKey(e.0)),
            IssuerAlg::EdDSA => <[u8; 32]>::try_from(secret)
                .map(|b| Self {
                    secret: Secret::Ed(ed25519_dalek::SigningKey::from_bytes(&b)),
                })
                .map_err(|_| KeyError::InvalidKey("an Ed25519 secret is 32 bytes".into())),
        }
    }

    pub fn alg(&self) -> IssuerAlg {
        match self.secret {
            Secret::Ed(_) => IssuerAlg::EdDSA,
            Secret::P256(_) => IssuerAlg::ES256,
        }
    }

    /// The public key: 32 bytes for Ed25519, compressed SEC1 (33 bytes) for P-256.
    pub fn public_key(&self) -> Vec<u8> {
        match &self.secret {
            Secret::Ed(k) => k.verifying_key().to_bytes().to_vec(),
            Secret::P256(s) => s.public_key(),
        }
    }

    /// The key id, [`kid_of`] the public key.
    pub fn kid(&self) -> Vec<u8> {
        kid_of(&self.public_key())
    }

    /// The 32-byte secret (for the key file).
    pub fn secret(&self) -> Vec<u8> {
        match &self.secret {
            Secret::Ed(k) => k.to_bytes().to_vec(),
            Secret::P256(s) => s.secret(),
        }
    }

    /// Sign `message`; the signature is 64 bytes for both algorithms.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        match &self.secret {
            Secret::Ed(k) => Ok(k.sign(message).to_bytes().to_vec()),
            Secret::P256(s) => sign_normalised(s, message).map_err(|e| e.0),
        }
    }

    /// The key file contents.
    pub fn to_file(&self) -> IssuerKeyFile {
        IssuerKeyFile {
            format: KEY_FILE_FORMAT.into(),
            version: 1,
            alg: self.alg(),
            kid: to_hex(&self.kid()),
            public_key: to_hex(&self.public_key()),
            secret_key: to_hex(&self.secret()),
        }
    }

    /// The key file as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.to_file()).unwrap_or_default()
    }

    /// Load a key file; the public key and kid in it must match the secret.
    pub fn from_json(text: &str) -> Result<Self, KeyError> {
        let file: IssuerKeyFile =
            serde_json::from_str(text).map_err(|e| KeyError::Format(e.to_string()))?;
        if file.format != KEY_FILE_FORMAT || file.version != 1 {
            return Err(KeyError::Format(format!(
                "not a {KEY_FILE_FORMAT} version 1 file"
            )));
        }
        let secret = from_hex(&file.secret_key)
            .ok_or_else(|| KeyError::Format("secret_key is not hex".into()))?;
        let key = Self::from_secret(file.alg, &secret)?;
        if from_hex(&file.public_key).as_deref() != Some(&key.public_key()[..])
            || from_hex(&file.kid).as_deref() != Some(&key.kid()[..])
        {
            return Err(KeyError::InvalidKey(
                "public key or kid does not match the secret".into(),
            ));
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sign_verify_and_survive_their_file() {
        for alg in [IssuerAlg::EdDSA, IssuerAlg::ES256] {
            let key = IssuerKey::generate(alg).unwrap();
            let sig = key.sign(b"label").unwrap();
            assert_eq!(sig.len(), 64);
            assert!(verify_issuer_signature(
                alg,
                &key.public_key(),
                b"label",
                &sig
            ));
            assert!(!verify_issuer_signature(
                alg,
                &key.public_key(),
                b"lab3l",
                &sig
            ));
            check_public_key(alg, &key.public_key()).unwrap();
            let loaded = IssuerKey::from_json(&key.to_json()).unwrap();
            assert_eq!(loaded.public_key(), key.public_key());
            assert_eq!(loaded.kid().len(), KID_LEN);
        }
    }

    #[test]
    fn tampered_key_files_are_refused() {
        let key = IssuerKey::generate(IssuerAlg::EdDSA).unwrap();
        let mut file = key.to_file();
        file.kid = "0000000000000000".into();
        let text = serde_json::to_string(&file).unwrap();
        assert!(matches!(
            IssuerKey::from_json(&text),
            Err(KeyError::InvalidKey(_))
        ));
        assert!(matches!(
            IssuerKey::from_json("{not json"),
            Err(KeyError::Format(_))
        ));
        assert!(IssuerKey::from_secret(IssuerAlg::ES256, &[0; 32]).is_err());
        assert!(check_public_key(IssuerAlg::EdDSA, &[1; 33]).is_err());
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(
            from_hex(&to_hex(&[0, 1, 0xab, 0xff])),
            Some(vec![0, 1, 0xab, 0xff])
        );
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex("é1"), None);
    }
}
