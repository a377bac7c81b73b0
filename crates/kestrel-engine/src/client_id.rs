//! Client order ids that are unique and stable across restarts: `<prefix>-<seq>`.
//!
//! The sequence number continues from the journal (the binary reads the highest sequence it ever
//! journaled and passes `next_seq`), so a restarted bot never reuses an id the exchange may still
//! know, and reconciliation can recognise its own orders by prefix ([`ClientIdGen::parse_seq`]).
//! Ids stay inside Binance's `newClientOrderId` pattern `^[.A-Z:/a-z0-9_-]{1,36}$`: the prefix is
//! validated against that alphabet and limited to [`ClientIdGen::MAX_PREFIX_LEN`] bytes so that
//! the longest `u64` still fits.

use kestrel_model::{ClientOrderId, IdError};

/// Generates `<prefix>-<seq>` client order ids without allocating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdGen {
    /// Distinguishes this bot's orders from other bots on the same account (S09) and from
    /// manual orders; validated once at construction.
    prefix: ClientOrderId,
    /// The sequence number the next id gets; strictly increasing, persisted by the caller.
    next_seq: u64,
}

/// Why a prefix can't be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClientIdError {
    /// The prefix is not a valid client order id (empty or a character outside the alphabet).
    #[error("invalid client id prefix: {0}")]
    Invalid(#[source] IdError),
    /// The prefix leaves too little room for the sequence number.
    #[error("client id prefix longer than {max} bytes")]
    TooLong {
        /// Maximum prefix length.
        max: usize,
    },
    /// The sequence space is exhausted (after 2^64 − 1 orders).
    #[error("client id sequence exhausted")]
    Exhausted,
}

impl ClientIdGen {
    /// Longest prefix: 36 − 1 (`-`) − 20 (digits of `u64::MAX`).
    pub const MAX_PREFIX_LEN: usize = ClientOrderId::MAX_LEN - 1 - 20;

    /// A generator whose first id is `<prefix>-<next_seq>`.
    pub fn new(prefix: &str, next_seq: u64) -> Result<Self, ClientIdError> {
        let prefix = ClientOrderId::new(prefix).map_err(ClientIdError::Invalid)?;
        if prefix.as_str().len() > Self::MAX_PREFIX_LEN {
            return Err(ClientIdError::TooLong { max: Self::MAX_PREFIX_LEN });
        }
        Ok(Self { prefix, next_seq })
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        self.prefix.as_str()
    }

    /// The sequence number the next id will carry (what the journal must persist).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Makes sure the next id comes after `seq` (an id seen at reconciliation, e.g. from an
    /// adopted order the journal missed), so no id is ever issued twice.
    pub fn ensure_after(&mut self, seq: u64) {
        if seq >= self.next_seq {
            self.next_seq = seq.saturating_add(1);
        }
    }

    /// Issues the next id.
    pub fn next_id(&mut self) -> Result<ClientOrderId, ClientIdError> {
        let seq = self.next_seq;
        self.next_seq = seq.checked_add(1).ok_or(ClientIdError::Exhausted)?;
        Ok(self.format(seq))
    }

    /// The id a given sequence number gets (without consuming it).
    pub fn format(&self, seq: u64) -> ClientOrderId {
        let mut buf = [0u8; ClientOrderId::MAX_LEN];
        let p = self.prefix.as_str().as_bytes();
        buf[..p.len()].copy_from_slice(p);
        buf[p.len()] = b'-';
        let mut digits = [0u8; 20];
        let mut n = seq;
        let mut i = digits.len();
        loop {
            i -= 1;
            #[allow(clippy::cast_possible_truncation)] // n % 10 < 10
            {
                digits[i] = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let start = p.len() + 1;
        let len = start + digits.len() - i;
        buf[start..len].copy_from_slice(&digits[i..]);
        // Prefix validated, '-' and digits are in the alphabet, length <= 36 by MAX_PREFIX_LEN.
        let s = std::str::from_utf8(&buf[..len]).expect("invariant: ASCII prefix and digits");
        ClientOrderId::new(s).expect("invariant: prefix validated and length bounded")
    }

    /// The sequence number of an id this generator's prefix would have issued, or `None` for a
    /// foreign id (another bot, a manual order).
    pub fn parse_seq(&self, id: &ClientOrderId) -> Option<u64> {
        let rest = id.as_str().strip_prefix(self.prefix.as_str())?.strip_prefix('-')?;
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rest.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_sequential_and_parse_back() {
        let mut g = ClientIdGen::new("kst1", 41).unwrap();
        let a = g.next_id().unwrap();
        let b = g.next_id().unwrap();
        assert_eq!(a.as_str(), "kst1-41");
        assert_eq!(b.as_str(), "kst1-42");
        assert_eq!(g.next_seq(), 43);
        assert_eq!(g.parse_seq(&b), Some(42));
        assert_eq!(g.parse_seq(&ClientOrderId::new("other-42").unwrap()), None);
        assert_eq!(g.parse_seq(&ClientOrderId::new("kst1-4x").unwrap()), None);
        assert_eq!(g.parse_seq(&ClientOrderId::new("kst12-4").unwrap()), None);
    }

    #[test]
    fn longest_prefix_and_largest_seq_fit_binance_pattern() {
        let prefix = "a.B:c/d_e-f0123"; // 15 bytes, every special character of the alphabet
        let g = ClientIdGen::new(prefix, u64::MAX).unwrap();
        let id = g.format(u64::MAX);
        assert_eq!(id.as_str().len(), 36);
        assert_eq!(g.parse_seq(&id), Some(u64::MAX));
        // u64::MAX itself is the exhaustion sentinel: the last id issued is MAX − 1.
        let mut g = ClientIdGen::new(prefix, u64::MAX - 1).unwrap();
        assert_eq!(g.next_id().unwrap(), g.format(u64::MAX - 1));
        assert_eq!(g.next_id(), Err(ClientIdError::Exhausted));
    }

    #[test]
    fn bad_prefixes_are_refused() {
        // TC0: too long
        assert_eq!(ClientIdGen::new(&"x".repeat(16), 0), Err(ClientIdError::TooLong { max: 15 }));
        // TC1: outside the alphabet
        assert!(matches!(ClientIdGen::new("k st", 0), Err(ClientIdError::Invalid(_))));
        // TC2: empty
        assert!(matches!(ClientIdGen::new("", 0), Err(ClientIdError::Invalid(IdError::Empty))));
    }
}
