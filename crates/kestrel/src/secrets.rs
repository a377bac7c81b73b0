//! Secrets: the Binance API key and secret and the admin token, read only from environment
//! variables or files, never from the TOML config (STYLE.md 2.7, mistake 10).
//!
//! Lookup order for each secret, first match wins:
//! 1. the environment variable holding the value itself (`KESTREL_BINANCE_API_KEY`, …);
//! 2. the `…_FILE` environment variable holding a path to a file with the value;
//! 3. a config field naming a file path (`exchange.api_key_file`, …).
//!
//! Setting both 1 and 2 is an error (ambiguous). Values read from files have trailing whitespace
//! (the final newline an editor adds) removed. An empty value counts as not set.
//!
//! Every secret is held in a [`Secret`], whose `Debug`/`Display` print `[redacted]` and whose
//! memory is zeroed on drop. The API secret is checked at load time to be a usable signing key
//! for `kestrel_binance::sign` (an HMAC secret, or an Ed25519 PEM that must parse), and
//! [`ApiCredentials::signing_credentials`] builds the `kestrel_binance::sign::Credentials` each
//! client signs with (the signing types are theirs; this module only finds the secrets).

use std::fmt;
use std::path::{Path, PathBuf};

use kestrel_binance::sign::{self, SignError};
use zeroize::Zeroizing;

/// Env var holding the Binance API key (the name `kestrel-binance` documents).
pub const API_KEY_ENV: &str = sign::ENV_API_KEY;
/// Env var holding the Binance API secret: HMAC secret or Ed25519 private key PEM.
pub const API_SECRET_ENV: &str = sign::ENV_API_SECRET;
/// Env var holding the admin API token.
pub const ADMIN_TOKEN_ENV: &str = "KESTREL_ADMIN_TOKEN";

/// A secret string: redacted when printed, zeroed when dropped, deliberately not `Clone`
/// (every copy is one more place the secret lives; share it behind an `Arc` instead).
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret itself. Call only where the value is needed (signing, header building), never
    /// to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes (safe to show; used for sanity checks such as a minimum token length).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty secret.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time comparison with a presented value (admin token checks), so response timing
    /// does not reveal how many leading bytes matched.
    pub fn matches(&self, presented: &str) -> bool {
        let a = self.0.as_bytes();
        let b = presented.as_bytes();
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where a secret was found; safe to print (it names a variable or a path, never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretOrigin {
    /// Read from this environment variable.
    Env(&'static str),
    /// Read from this file (named by an env var or a config field).
    File(PathBuf),
}

impl fmt::Display for SecretOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretOrigin::Env(var) => write!(f, "env {var}"),
            SecretOrigin::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// A secret together with where it came from.
#[derive(Debug)]
pub struct LoadedSecret {
    /// The value.
    pub secret: Secret,
    /// Where it was read from, for `check-config` and logs.
    pub origin: SecretOrigin,
}

/// Binance API credentials as found (text, redacted), already checked to be a usable signing
/// key.
#[derive(Debug)]
pub struct ApiCredentials {
    /// The API key, sent in `X-MBX-APIKEY` / `apiKey`.
    pub api_key: LoadedSecret,
    /// The HMAC secret or the Ed25519 private key (PEM) that signs requests.
    pub api_secret: LoadedSecret,
    /// Whether the secret is an Ed25519 key (required for `session.logon`), else HMAC.
    is_ed25519: bool,
}

impl ApiCredentials {
    /// Checks that the secret is a usable signing key and pairs it with the key.
    pub fn new(api_key: LoadedSecret, api_secret: LoadedSecret) -> Result<Self, SecretError> {
        let parsed = sign::Secret::from_text(api_secret.secret.expose()).map_err(|source| {
            SecretError::InvalidKey { origin: api_secret.origin.clone(), source }
        })?;
        Ok(Self { api_key, api_secret, is_ed25519: parsed.is_ed25519() })
    }

    /// True for an Ed25519 key, false for an HMAC secret.
    pub fn is_ed25519(&self) -> bool {
        self.is_ed25519
    }

    /// The signing algorithm, for display.
    pub fn signing(&self) -> &'static str {
        if self.is_ed25519 {
            "Ed25519"
        } else {
            "HMAC-SHA256"
        }
    }

    /// The credentials a `kestrel-binance` client signs with (a fresh value per client; the
    /// parsed key is zeroized when that client drops it).
    pub fn signing_credentials(&self) -> sign::Credentials {
        let secret = sign::Secret::from_text(self.api_secret.secret.expose())
            .expect("invariant: the same text parsed in ApiCredentials::new");
        sign::Credentials::new(self.api_key.secret.expose(), secret)
    }
}

/// Why a secret could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Both the value variable and its `_FILE` variant are set.
    #[error("both {var} and {var}_FILE are set; set only one")]
    Ambiguous {
        /// The value variable's name.
        var: &'static str,
    },
    /// The file named for a secret could not be read.
    #[error("cannot read {what} from file {}: {source}", path.display())]
    ReadFile {
        /// Which secret (e.g. "API key").
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file exists but holds nothing but whitespace.
    #[error("{what} file {} is empty", path.display())]
    EmptyFile {
        /// Which secret.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// The file's content is not UTF-8 text.
    #[error("{what} file {} is not UTF-8 text", path.display())]
    NotText {
        /// Which secret.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// The API secret is neither an HMAC secret nor a valid Ed25519 PEM key.
    #[error("the API secret from {origin} is not a usable signing key")]
    InvalidKey {
        /// Where it came from.
        origin: SecretOrigin,
        /// Why the signer refused it.
        #[source]
        source: SignError,
    },
    /// Only one of the API key and the API secret is set.
    #[error("{present} is set but {missing} is not; set both (or neither)")]
    Incomplete {
        /// The one that was found.
        present: &'static str,
        /// The one that is missing.
        missing: &'static str,
    },
}

/// A read-only view of the environment, so config loading can be tested without touching the
/// process environment.
pub trait EnvSource {
    /// The value of `name`, or `None` if unset or not valid Unicode.
    fn get(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvSource for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name).cloned()
    }
}

/// Loads one secret: `var`, then `var_FILE`, then `config_file` (a path from the config).
/// `Ok(None)` when none is set.
pub fn load_secret(
    env: &dyn EnvSource,
    what: &'static str,
    var: &'static str,
    config_file: Option<&Path>,
) -> Result<Option<LoadedSecret>, SecretError> {
    let file_var = format!("{var}_FILE");
    let direct = env.get(var).filter(|v| !v.is_empty());
    let via_env_file = env.get(&file_var).filter(|v| !v.is_empty());
    match (direct, via_env_file) {
        (Some(_), Some(_)) => Err(SecretError::Ambiguous { var }),
        (Some(value), None) => {
            Ok(Some(LoadedSecret { secret: Secret::new(value), origin: SecretOrigin::Env(var) }))
        }
        (None, Some(path)) => read_secret_file(what, Path::new(&path)).map(Some),
        (None, None) => match config_file {
            Some(path) => read_secret_file(what, path).map(Some),
            None => Ok(None),
        },
    }
}

/// Loads the API key and secret as a pair (both or neither) and checks the secret is a usable
/// signing key.
pub fn load_credentials(
    env: &dyn EnvSource,
    key_file: Option<&Path>,
    secret_file: Option<&Path>,
) -> Result<Option<ApiCredentials>, SecretError> {
    let key = load_secret(env, "API key", API_KEY_ENV, key_file)?;
    let secret = load_secret(env, "API secret", API_SECRET_ENV, secret_file)?;
    match (key, secret) {
        (Some(api_key), Some(api_secret)) => ApiCredentials::new(api_key, api_secret).map(Some),
        (None, None) => Ok(None),
        (Some(_), None) => {
            Err(SecretError::Incomplete { present: "the API key", missing: "the API secret" })
        }
        (None, Some(_)) => {
            Err(SecretError::Incomplete { present: "the API secret", missing: "the API key" })
        }
    }
}

fn read_secret_file(what: &'static str, path: &Path) -> Result<LoadedSecret, SecretError> {
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| SecretError::ReadFile {
        what,
        path: path.to_path_buf(),
        source,
    })?);
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| SecretError::NotText { what, path: path.to_path_buf() })?;
    let trimmed = text.trim_end();
    if trimmed.is_empty() {
        return Err(SecretError::EmptyFile { what, path: path.to_path_buf() });
    }
    warn_if_readable_by_others(what, path);
    Ok(LoadedSecret {
        secret: Secret::new(trimmed.to_owned()),
        origin: SecretOrigin::File(path.to_path_buf()),
    })
}

#[cfg(unix)]
fn warn_if_readable_by_others(what: &str, path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                mode = format_args!("{:o}", mode & 0o777),
                "{what} file is readable by group or others; chmod 600 it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_what: &str, _path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn secret_never_prints_its_value() {
        let s = Secret::new("hunter2-very-secret".into());
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        let creds = ApiCredentials::new(
            LoadedSecret {
                secret: Secret::new("KEYVALUE".into()),
                origin: SecretOrigin::Env(API_KEY_ENV),
            },
            LoadedSecret {
                secret: Secret::new("SECRETVALUE".into()),
                origin: SecretOrigin::Env(API_SECRET_ENV),
            },
        )
        .unwrap();
        let dbg = format!("{creds:?}");
        assert!(!format!("{:?}", creds.signing_credentials()).contains("SECRETVALUE"));
        assert!(!dbg.contains("KEYVALUE") && !dbg.contains("SECRETVALUE"), "{dbg}");
        assert_eq!(s.expose(), "hunter2-very-secret");
    }

    #[test]
    fn secret_matches_is_exact() {
        let s = Secret::new("abc".into());
        assert!(s.matches("abc"));
        assert!(!s.matches("abd"));
        assert!(!s.matches("ab"));
        assert!(!s.matches("abcd"));
    }

    #[test]
    fn load_secret_lookup_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "from-file\n").unwrap();
        let cfg_file = dir.path().join("cfgkey");
        std::fs::write(&cfg_file, "from-config-path\n\n").unwrap();
        let file_s = file.to_str().unwrap();

        // TC0: direct env var wins over the config path.
        let e = env(&[(API_KEY_ENV, "direct")]);
        let got = load_secret(&e, "API key", API_KEY_ENV, Some(&cfg_file)).unwrap().unwrap();
        assert_eq!(got.secret.expose(), "direct");
        assert_eq!(got.origin, SecretOrigin::Env(API_KEY_ENV));

        // TC1: _FILE env var, trailing newline trimmed.
        let e = env(&[("KESTREL_BINANCE_API_KEY_FILE", file_s)]);
        let got = load_secret(&e, "API key", API_KEY_ENV, Some(&cfg_file)).unwrap().unwrap();
        assert_eq!(got.secret.expose(), "from-file");

        // TC2: config path when no env var.
        let got = load_secret(&env(&[]), "API key", API_KEY_ENV, Some(&cfg_file)).unwrap().unwrap();
        assert_eq!(got.secret.expose(), "from-config-path");
        assert_eq!(got.origin, SecretOrigin::File(cfg_file.clone()));

        // TC3: nothing set.
        assert!(load_secret(&env(&[]), "API key", API_KEY_ENV, None).unwrap().is_none());

        // TC4: both forms set is ambiguous.
        let e = env(&[(API_KEY_ENV, "x"), ("KESTREL_BINANCE_API_KEY_FILE", file_s)]);
        let err = load_secret(&e, "API key", API_KEY_ENV, None).unwrap_err();
        assert!(matches!(err, SecretError::Ambiguous { .. }), "{err}");

        // TC5: missing file names the file.
        let e = env(&[("KESTREL_BINANCE_API_KEY_FILE", "/nonexistent/kestrel/key")]);
        let err = load_secret(&e, "API key", API_KEY_ENV, None).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/kestrel/key"), "{err}");

        // TC6: empty file.
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "  \n").unwrap();
        let err = load_secret(&env(&[]), "API key", API_KEY_ENV, Some(&empty)).unwrap_err();
        assert!(matches!(err, SecretError::EmptyFile { .. }), "{err}");

        // TC7: an empty env var counts as unset.
        assert!(load_secret(&env(&[(API_KEY_ENV, "")]), "k", API_KEY_ENV, None).unwrap().is_none());
    }

    #[test]
    fn credentials_need_both_halves() {
        let e = env(&[(API_KEY_ENV, "k")]);
        let err = load_credentials(&e, None, None).unwrap_err();
        assert!(matches!(err, SecretError::Incomplete { .. }), "{err}");
        let e = env(&[(API_KEY_ENV, "k"), (API_SECRET_ENV, "an-hmac-secret")]);
        let creds = load_credentials(&e, None, None).unwrap().unwrap();
        assert_eq!(creds.signing(), "HMAC-SHA256");
        assert_eq!(creds.signing_credentials().api_key, "k");
        assert!(load_credentials(&env(&[]), None, None).unwrap().is_none());
        // A PEM that is not a valid Ed25519 key is refused at load time, naming its origin.
        let e = env(&[(API_KEY_ENV, "k"), (API_SECRET_ENV, "-----BEGIN PRIVATE KEY-----\nx")]);
        let err = load_credentials(&e, None, None).unwrap_err();
        assert!(matches!(err, SecretError::InvalidKey { .. }), "{err}");
        assert!(err.to_string().contains("env KESTREL_BINANCE_API_SECRET"), "{err}");
    }
}
