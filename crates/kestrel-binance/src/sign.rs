//! Request signing (SPEC.md §4): HMAC-SHA256 (hex) and Ed25519 (base64), the REST and the
//! WebSocket API payload rules, and the [`Credentials`] that hold the key.
//!
//! Rules restated from rest-api.md and web-socket-api.md:
//! - **REST**: the signed payload is the percent-encoded query string immediately followed (no
//!   separator) by the form body, exactly the bytes sent. Non-ASCII must be percent-encoded
//!   (unencoded payloads get `-1022` since 2026-01-15). kestrel sends every parameter in the
//!   query, built once by [`rest_query`] and signed as is.
//! - **WebSocket API**: every parameter except `signature` (including `apiKey`), sorted by name,
//!   joined as `name=value` with `&`, values as raw UTF-8, *not* percent-encoded
//!   ([`ws_api_payload`]).
//! - HMAC signatures are hex (case-insensitive); Ed25519 signatures are base64 (and therefore
//!   percent-encoded when they go into a REST query).
//!
//! Secrets never appear in `Debug` output and are zeroized when dropped (STYLE.md 2.7).

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use ed25519_dalek::Signer as _;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Environment variable holding the API key.
pub const ENV_API_KEY: &str = "KESTREL_BINANCE_API_KEY";
/// Environment variable holding the secret: an HMAC secret, or an Ed25519 private key in PEM
/// (PKCS#8) form.
pub const ENV_API_SECRET: &str = "KESTREL_BINANCE_API_SECRET";

/// Everything but RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) is percent-encoded, so
/// the query we sign is byte-for-byte the query the URL carries (no later re-encoding).
const QUERY_ENCODE: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Why credentials could not be loaded or a request could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// A signed request was attempted without credentials.
    #[error("no api credentials configured")]
    MissingCredentials,
    /// An environment variable is missing or not UTF-8.
    #[error("environment variable {0} is not set")]
    MissingEnv(&'static str),
    /// The secret file could not be read.
    #[error("cannot read secret file {path}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key material is not a valid HMAC secret or Ed25519 key.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
}

/// Key material: an HMAC secret or an Ed25519 private key. `Debug` prints `Secret(<redacted>)`;
/// both variants are wiped from memory on drop.
pub struct Secret(SecretKind);

enum SecretKind {
    /// HMAC-SHA256 secret bytes (`Zeroizing` wipes them on drop).
    Hmac(Zeroizing<Vec<u8>>),
    /// Ed25519 signing key (`ed25519_dalek::SigningKey` zeroizes itself on drop).
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.0 {
            SecretKind::Hmac(_) => "hmac",
            SecretKind::Ed25519(_) => "ed25519",
        };
        write!(f, "Secret({kind}, <redacted>)")
    }
}

impl Secret {
    /// An HMAC-SHA256 secret key (the 64-character string Binance shows once).
    pub fn hmac(secret: impl Into<String>) -> Self {
        let s: String = secret.into();
        Self(SecretKind::Hmac(Zeroizing::new(s.into_bytes())))
    }

    /// An Ed25519 private key from its raw 32-byte seed.
    pub fn ed25519_from_bytes(seed: &[u8; 32]) -> Self {
        Self(SecretKind::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(seed))))
    }

    /// An Ed25519 private key from a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), the format
    /// Binance's key generator writes.
    pub fn ed25519_from_pem(pem: &str) -> Result<Self, SignError> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim())
            .map_err(|_| SignError::InvalidKey("not a PKCS#8 PEM Ed25519 private key"))?;
        Ok(Self(SecretKind::Ed25519(Box::new(key))))
    }

    /// Interprets text as a key: a PEM block is an Ed25519 key, anything else an HMAC secret.
    pub fn from_text(text: &str) -> Result<Self, SignError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(SignError::InvalidKey("empty secret"));
        }
        if t.starts_with("-----BEGIN") {
            Self::ed25519_from_pem(t)
        } else {
            Ok(Self::hmac(t))
        }
    }

    /// Reads a key file: PEM (Ed25519) or a single line holding an HMAC secret.
    pub fn from_file(path: &Path) -> Result<Self, SignError> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|source| SignError::Io { path: path.display().to_string(), source })?,
        );
        Self::from_text(&text)
    }

    /// True for an Ed25519 key (required by `session.logon`).
    pub fn is_ed25519(&self) -> bool {
        matches!(self.0, SecretKind::Ed25519(_))
    }

    /// Signs `payload`: lower-case hex for HMAC, standard base64 for Ed25519.
    pub fn sign(&self, payload: &[u8]) -> String {
        match &self.0 {
            SecretKind::Hmac(key) => hmac_sha256_hex(key, payload),
            SecretKind::Ed25519(key) => {
                base64::engine::general_purpose::STANDARD.encode(key.sign(payload).to_bytes())
            }
        }
    }

    /// The Ed25519 public key (to register with the exchange or the simulator), if any.
    pub fn ed25519_public_key(&self) -> Option<ed25519_dalek::VerifyingKey> {
        match &self.0 {
            SecretKind::Ed25519(k) => Some(k.verifying_key()),
            SecretKind::Hmac(_) => None,
        }
    }
}

/// An API key and its secret.
#[derive(Debug)]
pub struct Credentials {
    /// The API key, sent in `X-MBX-APIKEY` (REST) or `apiKey` (WebSocket API). Not secret on
    /// its own, but only useful with the secret.
    pub api_key: String,
    /// The signing key.
    pub secret: Secret,
}

impl Credentials {
    /// Credentials from a key and a secret.
    pub fn new(api_key: impl Into<String>, secret: Secret) -> Self {
        Self { api_key: api_key.into(), secret }
    }

    /// Reads [`ENV_API_KEY`] and [`ENV_API_SECRET`] (HMAC secret or Ed25519 PEM).
    pub fn from_env() -> Result<Self, SignError> {
        let key = std::env::var(ENV_API_KEY).map_err(|_| SignError::MissingEnv(ENV_API_KEY))?;
        let secret = Zeroizing::new(
            std::env::var(ENV_API_SECRET).map_err(|_| SignError::MissingEnv(ENV_API_SECRET))?,
        );
        Ok(Self::new(key, Secret::from_text(&secret)?))
    }

    /// The API key from [`ENV_API_KEY`] and the secret from a file (PEM or HMAC text).
    pub fn from_env_key_and_file(secret_path: &Path) -> Result<Self, SignError> {
        let key = std::env::var(ENV_API_KEY).map_err(|_| SignError::MissingEnv(ENV_API_KEY))?;
        Ok(Self::new(key, Secret::from_file(secret_path)?))
    }

    /// Signs a payload with the secret.
    pub fn sign(&self, payload: &[u8]) -> String {
        self.secret.sign(payload)
    }
}

/// HMAC-SHA256 of `payload` under `key`, lower-case hex.
pub fn hmac_sha256_hex(key: &[u8], payload: &[u8]) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .expect("invariant: HMAC takes keys of any length");
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

/// Percent-encodes one query component (everything but unreserved characters).
pub fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, QUERY_ENCODE).to_string()
}

/// Builds a REST query string `k=v&k=v` in the given order, percent-encoding keys and values.
/// These are exactly the bytes sent and signed.
pub fn rest_query<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    let mut out = String::with_capacity(params.len() * 16);
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.extend(utf8_percent_encode(k.as_ref(), QUERY_ENCODE));
        out.push('=');
        out.extend(utf8_percent_encode(v.as_ref(), QUERY_ENCODE));
    }
    out
}

/// The REST signed payload: query string then body, no separator (rest-api.md).
pub fn rest_payload(query: &str, body: &str) -> String {
    let mut s = String::with_capacity(query.len() + body.len());
    s.push_str(query);
    s.push_str(body);
    s
}

/// The WebSocket API signed payload: every parameter but `signature`, sorted by name, raw UTF-8.
pub fn ws_api_payload<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .filter(|(k, _)| *k != "signature")
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = String::new();
    for (i, (k, v)) in sorted.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let s = Secret::hmac("NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j");
        let c = Credentials::new("key", s);
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("NhqPtmd"), "{dbg}");
        assert!(dbg.contains("<redacted>"));
        let e = Secret::ed25519_from_bytes(&[7; 32]);
        assert_eq!(format!("{e:?}"), "Secret(ed25519, <redacted>)");
    }

    #[test]
    fn query_encoding_leaves_only_unreserved() {
        assert_eq!(rest_query(&[("a", "x y"), ("b", "+/=")]), "a=x%20y&b=%2B%2F%3D");
        assert_eq!(encode_component("0.1"), "0.1");
        assert_eq!(encode_component("１"), "%EF%BC%91");
    }

    #[test]
    fn ws_payload_sorts_and_drops_signature() {
        let p = ws_api_payload(&[("symbol", "１"), ("apiKey", "k"), ("signature", "x")]);
        assert_eq!(p, "apiKey=k&symbol=１");
    }

    #[test]
    fn from_text_picks_the_key_type() {
        assert!(!Secret::from_text("abc\n").unwrap().is_ed25519());
        assert!(Secret::from_text("  ").is_err());
        assert!(Secret::from_text("-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----")
            .is_err());
    }
}
