//! The cluster's secrets key: 32 bytes every controller reads from its
//! `--secrets-key-file` and that is never stored beside the values it
//! seals. Values are sealed with XChaCha20-Poly1305 (a random 24-byte
//! nonce per value, so no nonce bookkeeping is replicated), with the
//! record they belong to as associated data, so a ciphertext moved to
//! another record does not open.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use orca_core::secrets::SecretValue;
use sha2::{Digest, Sha256};

use crate::state::secrets::Sealed;

const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the secrets key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the secrets key file {path} {problem}: it must hold 32 random bytes, raw, as 64 hex \
         digits or in base64 (for example `head -c 32 /dev/urandom > {path}`)"
    )]
    Format { path: PathBuf, problem: String },
    #[error(
        "the secrets key file {path} is readable by other users (mode {mode:o}): `chmod 600 {path}`"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("{0}")]
    Mismatch(String),
    /// A value did not open: wrong key, or a record tampered with. Never
    /// carries the value.
    #[error("a sealed value does not open with this controller's secrets key ({0})")]
    Open(String),
}

/// The loaded key and its fingerprint.
pub struct SecretsKey {
    cipher: XChaCha20Poly1305,
    id: String,
}

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretsKey({})", self.id)
    }
}

impl SecretsKey {
    /// Reads the key file: 32 raw bytes, 64 hex digits or base64, owned
    /// by its reader only.
    pub fn load(path: &Path) -> Result<SecretsKey, KeyError> {
        use std::os::unix::fs::PermissionsExt;
        let read_err = |source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_err)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        let bytes = std::fs::read(path).map_err(read_err)?;
        let key = decode(&bytes).map_err(|problem| KeyError::Format {
            path: path.to_path_buf(),
            problem,
        })?;
        Ok(SecretsKey::from_bytes(&key))
    }

    pub fn from_bytes(key: &[u8; KEY_LEN]) -> SecretsKey {
        let mut h = Sha256::new();
        h.update(b"orca secrets key id v1\0");
        h.update(key);
        let id = hex::encode(&h.finalize()[..8]);
        SecretsKey {
            cipher: XChaCha20Poly1305::new(key.into()),
            id,
        }
    }

    /// The key's fingerprint, stored with every sealed value.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `plaintext` for the record named by `context`.
    pub fn seal(&self, plaintext: &str, context: &str) -> Sealed {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: context.as_bytes(),
        };
        // Encryption fails only for messages beyond the cipher's limit
        // (256 GiB), far past any request the API takes.
        let ciphertext = self.cipher.encrypt(&nonce, payload).unwrap_or_default();
        let b64 = base64::engine::general_purpose::STANDARD;
        Sealed {
            key_id: self.id.clone(),
            nonce: b64.encode(nonce),
            ciphertext: b64.encode(ciphertext),
        }
    }

    /// Opens a value sealed for `context`.
    pub fn open(&self, sealed: &Sealed, context: &str) -> Result<SecretValue, KeyError> {
        if sealed.key_id != self.id {
            return Err(KeyError::Open(format!(
                "it was sealed with key {}, this controller holds key {}",
                sealed.key_id, self.id
            )));
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let nonce = b64
            .decode(&sealed.nonce)
            .ok()
            .filter(|n| n.len() == 24)
            .ok_or_else(|| KeyError::Open("a malformed nonce".into()))?;
        let ciphertext = b64
            .decode(&sealed.ciphertext)
            .map_err(|_| KeyError::Open("a malformed ciphertext".into()))?;
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| KeyError::Open(format!("authentication failed for {context}")))?;
        String::from_utf8(plain)
            .map(SecretValue::new)
            .map_err(|_| KeyError::Open("not UTF-8".into()))
    }
}

/// The context (associated data) a secret version is sealed for.
pub fn secret_context(name: &str, version_id: &str) -> String {
    format!("secret:{name}:{version_id}")
}

/// The context a parameter's value is sealed for.
pub fn parameter_context(name: &str) -> String {
    format!("parameter:{name}")
}

fn decode(bytes: &[u8]) -> Result<[u8; KEY_LEN], String> {
    if bytes.len() == KEY_LEN {
        let mut key = [0u8; KEY_LEN];
        key.copy_from_slice(bytes);
        return Ok(key);
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| format!("holds {} bytes, not 32", bytes.len()))?
        .trim();
    let decoded = if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).map_err(|e| e.to_string())?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| {
                format!(
                    "holds {} bytes that are not 32 raw, hex or base64",
                    bytes.len()
                )
            })?
    };
    <[u8; KEY_LEN]>::try_from(decoded.as_slice())
        .map_err(|_| format!("decodes to {} bytes, not 32", decoded.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_opens_only_with_its_key_and_its_record() {
        let key = SecretsKey::from_bytes(&[7; 32]);
        let sealed = key.seal("hunter2", "secret:db:v1");
        assert!(!sealed.ciphertext.contains("hunter2"));
        assert_eq!(
            key.open(&sealed, "secret:db:v1")
                .map(|v| v.expose().to_string())
                .ok(),
            Some("hunter2".to_string())
        );
        assert!(
            key.open(&sealed, "secret:other:v1").is_err(),
            "moved to another record"
        );
        let other = SecretsKey::from_bytes(&[8; 32]);
        assert_ne!(other.id(), key.id());
        let e = other
            .open(&sealed, "secret:db:v1")
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("sealed with key") && !e.contains("hunter2")));
        // Same key id for a forged record: authentication still fails.
        let forged = Sealed {
            key_id: key.id().to_string(),
            ..other.seal("x", "secret:db:v1")
        };
        assert!(key.open(&forged, "secret:db:v1").is_err());
    }

    #[test]
    fn the_key_file_is_raw_hex_or_base64_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let raw = [9u8; 32];
        let forms: [(&str, Vec<u8>); 3] = [
            ("raw", raw.to_vec()),
            ("hex", format!("{}\n", hex::encode(raw)).into_bytes()),
            (
                "b64",
                base64::engine::general_purpose::STANDARD
                    .encode(raw)
                    .into_bytes(),
            ),
        ];
        let want = SecretsKey::from_bytes(&raw).id().to_string();
        for (name, bytes) in forms {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("{e}"));
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                .unwrap_or_else(|e| panic!("{e}"));
            let key = SecretsKey::load(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(key.id(), want, "{name}");
        }
        let open = dir.path().join("open");
        std::fs::write(&open, raw).unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("{e}"));
        let e = SecretsKey::load(&open)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("chmod 600"), "{e}");
        let short = dir.path().join("short");
        std::fs::write(&short, "abc").unwrap_or_else(|e| panic!("{e}"));
        std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o400))
            .unwrap_or_else(|e| panic!("{e}"));
        let e = SecretsKey::load(&short)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("32 random bytes"), "{e}");
    }
}
