//! Request authentication: API key lookup, signature verification (HMAC-SHA256 hex, Ed25519
//! base64) over the exact signed payload, and the `timestamp`/`recvWindow` rule (SPEC.md §4).
//!
//! REST payload: the query string immediately followed by the body, both exactly as sent, with
//! the `signature=` pair removed; a non-ASCII byte anywhere in it means the client signed an
//! unencoded payload and is refused with -1022 (Binance since 2026-01-15).
//! WS API payload: every param but `signature`, sorted by name, `k=v` joined by `&`, raw UTF-8.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::KeyMaterial;
use crate::error::ApiError;

/// Verifies `signature` over `payload` with `key`.
pub(crate) fn verify(key: &KeyMaterial, payload: &[u8], signature: &str) -> bool {
    match key {
        KeyMaterial::Hmac(secret) => {
            let Ok(sig) = hex::decode(signature) else { return false };
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return false };
            mac.update(payload);
            mac.verify_slice(&sig).is_ok()
        }
        KeyMaterial::Ed25519(vk) => {
            use base64::Engine as _;
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(signature) else {
                return false;
            };
            let Ok(sig) = ed25519_dalek::Signature::from_slice(&bytes) else { return false };
            vk.verify_strict(payload, &sig).is_ok()
        }
    }
}

/// Splits the raw `signature=` pair out of a raw query or body string. Returns the remaining
/// text (pairs in their original order) and the raw (still percent-encoded) signature.
pub(crate) fn strip_signature(raw: &str) -> (String, Option<String>) {
    let mut sig = None;
    let mut rest: Vec<&str> = Vec::new();
    for pair in raw.split('&') {
        if let Some(v) = pair.strip_prefix("signature=") {
            sig = Some(v.to_string());
        } else if !pair.is_empty() {
            rest.push(pair);
        }
    }
    (rest.join("&"), sig)
}

/// Builds the WS API signed payload from JSON params (sorted, raw values, `signature` excluded).
pub(crate) fn ws_payload(params: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut keys: Vec<&String> = params.keys().filter(|k| k.as_str() != "signature").collect();
    keys.sort();
    let mut out = String::new();
    for k in keys {
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        match &params[k.as_str()] {
            serde_json::Value::String(s) => out.push_str(s),
            serde_json::Value::Null => {}
            other => out.push_str(&other.to_string()),
        }
    }
    out
}

/// Checks `timestamp` (ms, or µs when it has 16+ digits) and `recvWindow` (ms, up to 3
/// decimals) against the server time: refuses `timestamp >= now + 1 s` and
/// `now - timestamp > recvWindow`.
pub(crate) fn check_timestamp(
    timestamp: Option<&str>,
    recv_window: Option<&str>,
    now_ms: u64,
    max_recv_window_ms: u64,
) -> Result<(), ApiError> {
    let ts = timestamp.filter(|s| !s.is_empty()).ok_or_else(|| ApiError::missing("timestamp"))?;
    let ts: u64 = ts.parse().map_err(|_| ApiError::illegal("timestamp"))?;
    let ts_us = if ts >= 10_000_000_000_000 { ts } else { ts.saturating_mul(1000) };
    let window_us = match recv_window {
        None | Some("") => 5_000_000,
        Some(w) => parse_recv_window_us(w).ok_or_else(|| ApiError::illegal("recvWindow"))?,
    };
    if window_us > max_recv_window_ms.saturating_mul(1000) {
        return Err(ApiError::bad(
            -1131,
            format!("recvWindow must be less than {max_recv_window_ms}."),
        ));
    }
    let now_us = now_ms.saturating_mul(1000);
    if ts_us >= now_us + 1_000_000 {
        return Err(ApiError::ts_ahead());
    }
    if now_us.saturating_sub(ts_us) > window_us {
        return Err(ApiError::ts_outside());
    }
    Ok(())
}

/// `"5000"` → 5_000_000 µs; `"5000.5"` → 5_000_500 µs; at most 3 decimals.
fn parse_recv_window_us(s: &str) -> Option<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int: u64 = int.parse().ok()?;
    let mut f: u64 = if frac.is_empty() { 0 } else { frac.parse().ok()? };
    for _ in frac.len()..3 {
        f *= 10;
    }
    int.checked_mul(1000)?.checked_add(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_signature_keeps_order() {
        let (p, s) = strip_signature("a=1&signature=abc&b=2");
        assert_eq!(p, "a=1&b=2");
        assert_eq!(s.as_deref(), Some("abc"));
    }

    #[test]
    fn timestamp_rules() {
        let now = 1_000_000;
        // TC0: in window
        assert!(check_timestamp(Some("999000"), None, now, 60_000).is_ok());
        // TC1: exactly 1 s ahead is refused
        assert_eq!(check_timestamp(Some("1001000"), None, now, 60_000).unwrap_err().code, -1021);
        // TC2: older than recvWindow
        assert_eq!(
            check_timestamp(Some("994999"), Some("5000"), now, 60_000).unwrap_err().code,
            -1021
        );
        // TC3: microseconds
        assert!(check_timestamp(Some("1749999999000000"), None, 1_750_000_000_000, 60_000).is_ok());
        // TC4: missing
        assert_eq!(check_timestamp(None, None, now, 60_000).unwrap_err().code, -1102);
        // TC5: too large recvWindow
        assert_eq!(
            check_timestamp(Some("999000"), Some("70000"), now, 60_000).unwrap_err().code,
            -1131
        );
        // TC6: fractional recvWindow
        assert!(check_timestamp(Some("999000"), Some("1000.5"), now, 60_000).is_ok());
    }
}
