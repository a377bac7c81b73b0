//! Process exit codes and the one-line error report (STYLE.md 2.4: the binary maps error classes
//! to exit codes).
//!
//! | code | class | meaning | what to fix |
//! |---|---|---|---|
//! | 0 | — | success | — |
//! | 1 | [`ExitClass::Other`] | anything else (I/O, runtime, a bug) | read the message |
//! | 2 | [`ExitClass::Usage`] | bad command line or bad config (also clap's own usage errors) | the flag or config field named in the message |
//! | 3 | [`ExitClass::Exchange`] | exchange refused us: authentication, permissions, ban, unreachable at start-up | credentials, IP allow-list, endpoints |
//! | 4 | [`ExitClass::Journal`] | the journal cannot be opened, is locked or is corrupt | `journal.path`, another running bot, disk |
//!
//! Supervisors (systemd `RestartPreventExitStatus=2`) should not restart on 2: the same
//! config will fail again.

use std::fmt;
use std::process::ExitCode;

use kestrel_binance::error::BinanceError;

use crate::config::ConfigError;
use crate::journal::JournalError;
use crate::secrets::SecretError;

/// A class of failure, each with its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitClass {
    /// Exit code 1: anything not classified below.
    Other,
    /// Exit code 2: bad command line or config.
    Usage,
    /// Exit code 3: the exchange refused or could not be reached (auth, permissions, ban).
    Exchange,
    /// Exit code 4: the journal is unusable.
    Journal,
}

impl ExitClass {
    /// The process exit code.
    pub const fn code(self) -> u8 {
        match self {
            ExitClass::Other => 1,
            ExitClass::Usage => 2,
            ExitClass::Exchange => 3,
            ExitClass::Journal => 4,
        }
    }

    /// As a [`std::process::ExitCode`].
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(self.code())
    }

    /// Classifies an error by walking its chain, outermost first: an explicit [`ExitClass`]
    /// context wins, then known error types (config, secrets, clap → usage; journal → journal;
    /// `kestrel_binance::error::BinanceError` → exchange).
    ///
    /// Code that fails with an exchange error attaches the class where it knows it:
    /// `result.context(ExitClass::Exchange)` (it displays as `exchange error`).
    pub fn of(err: &anyhow::Error) -> ExitClass {
        if let Some(class) = err.downcast_ref::<ExitClass>() {
            return *class;
        }
        for cause in err.chain() {
            if let Some(class) = cause.downcast_ref::<ExitClass>() {
                return *class;
            }
            if cause.is::<ConfigError>() || cause.is::<SecretError>() || cause.is::<clap::Error>() {
                return ExitClass::Usage;
            }
            if cause.is::<JournalError>() {
                return ExitClass::Journal;
            }
            if cause.is::<BinanceError>() {
                return ExitClass::Exchange;
            }
        }
        ExitClass::Other
    }
}

impl fmt::Display for ExitClass {
    /// Used as an `anyhow` context, so it reads as a prefix of the message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExitClass::Other => "error",
            ExitClass::Usage => "usage error",
            ExitClass::Exchange => "exchange error",
            ExitClass::Journal => "journal error",
        })
    }
}

impl std::error::Error for ExitClass {}

/// The whole error chain on one line, `outer: inner: root`, for stderr.
///
/// A cause is left out when its text is already part of the line (errors that embed their
/// source) or when it spans several lines (parsers' source snippets; the error above it has
/// already extracted the message). Never prints a backtrace.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() || text.contains('\n') || line.contains(text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text);
    }
    if line.is_empty() {
        line.push_str("unknown error");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn classes_map_to_codes() {
        // TC0: explicit context.
        let e = anyhow::anyhow!("401 Invalid API-key").context(ExitClass::Exchange);
        assert_eq!(ExitClass::of(&e), ExitClass::Exchange);
        // TC1: explicit context under another context.
        let e = Err::<(), _>(anyhow::anyhow!("-2015"))
            .context(ExitClass::Exchange)
            .context("starting run");
        assert_eq!(ExitClass::of(&e.unwrap_err()), ExitClass::Exchange);
        // TC2: a config error under a context.
        let e = anyhow::Error::new(ConfigError::Invalid {
            field: "risk.funds".into(),
            reason: "bad".into(),
        })
        .context("loading config");
        assert_eq!(ExitClass::of(&e), ExitClass::Usage);
        assert_eq!(ExitClass::Usage.code(), 2);
        // TC3: a journal error.
        let e = anyhow::Error::new(JournalError::Locked { path: "j".into() });
        assert_eq!(ExitClass::of(&e).code(), 4);
        // TC4: an exchange error anywhere in the chain.
        let e = anyhow::Error::new(BinanceError::InvalidRequest("bad")).context("fetching account");
        assert_eq!(ExitClass::of(&e), ExitClass::Exchange);
        // TC5: anything else.
        assert_eq!(ExitClass::of(&anyhow::anyhow!("boom")).code(), 1);
    }

    #[test]
    fn one_line_skips_repeats_and_snippets() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let e = anyhow::Error::new(ConfigError::Read { path: "x.toml".into(), source: io });
        assert_eq!(one_line(&e), "config error: cannot read x.toml: No such file");

        #[derive(Debug)]
        struct Snippet;
        impl fmt::Display for Snippet {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("line 1\n  |\n1 | x\n")
            }
        }
        impl std::error::Error for Snippet {}
        let e = anyhow::Error::new(Snippet).context("parse failed").context("loading");
        assert_eq!(one_line(&e), "loading: parse failed");
    }
}
