//! TOTP secrets at rest: AES-256-GCM under `[AUTH] MFA_KEY`, a fresh 96-bit
//! nonce per sealing, and the account id bound as associated data (a sealed
//! secret copied onto another account's row does not open). Each sealed
//! secret carries the id of its key, so a key being rotated out
//! (`MFA_KEY_PREVIOUS`) is still read and the right key is tried first.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use sha2::{Digest, Sha256};

use super::totp::TotpSecret;
use crate::config::MfaKey;

const NONCE_BYTES: usize = 12;

/// Which key sealed a secret: 8 bytes of a SHA-256 of the key (names the
/// key without revealing anything usable about it).
pub type KeyId = [u8; 8];

struct Key {
    id: KeyId,
    cipher: Aes256Gcm,
}

impl Key {
    fn new(key: &MfaKey) -> Key {
        let mut h = Sha256::new();
        h.update(b"profiteer mfa key id\0");
        h.update(key.0);
        let digest = h.finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        Key {
            id,
            cipher: Aes256Gcm::new(&key.0.into()),
        }
    }
}

/// The configured keys: the current one seals, both open.
pub struct Keys {
    current: Option<Key>,
    previous: Option<Key>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keys(***)")
    }
}

/// A secret as stored: its key's id and `nonce || ciphertext || tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: KeyId,
    pub blob: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealError {
    /// `[AUTH] MFA_KEY` is not set.
    NoKey,
    /// Sealed under a key that is neither MFA_KEY nor MFA_KEY_PREVIOUS.
    UnknownKey,
    /// The tag does not verify: altered, or bound to another account.
    Corrupt,
    Random,
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SealError::NoKey => "[AUTH] MFA_KEY is not set",
            SealError::UnknownKey => {
                "sealed under a key that is neither [AUTH] MFA_KEY nor MFA_KEY_PREVIOUS"
            }
            SealError::Corrupt => "does not decrypt (altered, or another account's)",
            SealError::Random => "the OS random generator failed",
        })
    }
}

/// The associated data: the account a secret belongs to.
fn aad(user_id: i64) -> Vec<u8> {
    let mut out = b"profiteer totp v1 user ".to_vec();
    out.extend_from_slice(&user_id.to_be_bytes());
    out
}

impl Keys {
    pub fn new(current: Option<&MfaKey>, previous: Option<&MfaKey>) -> Keys {
        Keys {
            current: current.map(Key::new),
            previous: previous.map(Key::new),
        }
    }

    pub fn current_id(&self) -> Option<KeyId> {
        self.current.as_ref().map(|k| k.id)
    }

    pub fn previous_id(&self) -> Option<KeyId> {
        self.previous.as_ref().map(|k| k.id)
    }

    pub fn knows(&self, id: &KeyId) -> bool {
        self.key(id).is_some()
    }

    fn key(&self, id: &KeyId) -> Option<&Key> {
        [&self.current, &self.previous]
            .into_iter()
            .flatten()
            .find(|k| &k.id == id)
    }

    pub fn seal(&self, user_id: i64, secret: &TotpSecret) -> Result<Sealed, SealError> {
        let key = self.current.as_ref().ok_or(SealError::NoKey)?;
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|_| SealError::Random)?;
        let aad = aad(user_id);
        let ciphertext = key
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &secret.0,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Corrupt)?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ciphertext);
        Ok(Sealed {
            key_id: key.id,
            blob,
        })
    }

    pub fn open(&self, user_id: i64, sealed: &Sealed) -> Result<TotpSecret, SealError> {
        let key = self.key(&sealed.key_id).ok_or(if self.current.is_none() {
            SealError::NoKey
        } else {
            SealError::UnknownKey
        })?;
        if sealed.blob.len() < NONCE_BYTES {
            return Err(SealError::Corrupt);
        }
        let (nonce, ciphertext) = sealed.blob.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SealError::Corrupt)?;
        let aad = aad(user_id);
        key.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(TotpSecret)
            .map_err(|_| SealError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(current: u8, previous: Option<u8>) -> Keys {
        Keys::new(
            Some(&MfaKey([current; 32])),
            previous.map(|p| MfaKey([p; 32])).as_ref(),
        )
    }

    #[test]
    fn a_sealed_secret_opens_for_its_account_only() {
        let k = keys(1, None);
        let secret = TotpSecret(b"12345678901234567890".to_vec());
        let sealed = k.seal(7, &secret).unwrap();
        assert!(!sealed
            .blob
            .windows(secret.0.len())
            .any(|w| w == secret.0.as_slice()));
        assert_eq!(k.open(7, &sealed).unwrap().0, secret.0);
        assert_eq!(k.open(8, &sealed).unwrap_err(), SealError::Corrupt);
        let mut altered = sealed.clone();
        altered.blob[NONCE_BYTES] ^= 1;
        assert_eq!(k.open(7, &altered).unwrap_err(), SealError::Corrupt);
    }

    #[test]
    fn two_sealings_of_one_secret_differ() {
        let k = keys(1, None);
        let secret = TotpSecret(vec![9; 20]);
        assert_ne!(k.seal(1, &secret).unwrap(), k.seal(1, &secret).unwrap());
    }

    #[test]
    fn the_previous_key_still_opens_and_an_unknown_one_is_named() {
        let secret = TotpSecret(vec![3; 20]);
        let old = keys(1, None).seal(5, &secret).unwrap();
        let rotated = keys(2, Some(1));
        assert_eq!(rotated.open(5, &old).unwrap().0, secret.0);
        assert_eq!(
            rotated.seal(5, &secret).unwrap().key_id,
            rotated.current_id().unwrap()
        );
        assert_eq!(
            keys(2, None).open(5, &old).unwrap_err(),
            SealError::UnknownKey
        );
        assert_eq!(
            Keys::new(None, None).open(5, &old).unwrap_err(),
            SealError::NoKey
        );
    }
}
