//! Signing: every worked example in `testdata/binance/signing.json` (HMAC REST ASCII and
//! non-ASCII, the historical mixed query/body example, the WebSocket API examples), plus
//! Ed25519 round trips and format checks (the docs publish no Ed25519 private key).

use base64::Engine as _;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use ed25519_dalek::Verifier as _;
use kestrel_binance::sign::{
    hmac_sha256_hex, rest_payload, rest_query, ws_api_payload, Credentials, Secret,
};
use serde_json::Value;

fn vectors() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/binance/signing.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Params object → ordered (name, text) pairs, numbers printed as JSON prints them.
fn pairs(params: &Value) -> Vec<(String, String)> {
    params
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
        .collect()
}

#[test]
fn hmac_worked_examples_rest_and_ws_api() {
    let v = vectors();
    let h = &v["hmac_sha256"];
    let secret = Secret::hmac(h["secret_key"].as_str().unwrap());
    let examples = h["worked_examples"].as_array().unwrap();
    assert_eq!(examples.len(), 4);
    for ex in examples {
        let id = ex["id"].as_str().unwrap();
        let payload = if ex["api"] == "REST" {
            // REST: the parameters in sending order (as the docs' unencoded payload lists
            // them; serde_json's map is sorted), percent-encoded by `rest_query`.
            let ordered: Vec<(&str, &str)> = ex["unencoded_payload"]
                .as_str()
                .unwrap()
                .split('&')
                .map(|kv| kv.split_once('=').unwrap())
                .collect();
            assert_eq!(ordered.len(), ex["params"].as_object().unwrap().len());
            rest_query(&ordered)
        } else {
            ws_api_payload(&pairs(&ex["params"]))
        };
        assert_eq!(payload, ex["signed_payload"].as_str().unwrap(), "{id}: payload");
        assert_eq!(
            secret.sign(payload.as_bytes()),
            ex["signature"].as_str().unwrap(),
            "{id}: signature"
        );
        if let Some(url) = ex["request_url"].as_str() {
            let sent = format!("{payload}&signature={}", secret.sign(payload.as_bytes()));
            assert!(url.ends_with(&sent), "{id}: request url");
        }
    }
}

#[test]
fn hmac_historical_mixed_query_and_body() {
    let v = vectors();
    let key = v["hmac_sha256"]["secret_key"].as_str().unwrap();
    for ex in v["hmac_sha256"]["historical_examples"].as_array().unwrap() {
        let payload = rest_payload(
            ex["query_string"].as_str().unwrap(),
            ex["request_body"].as_str().unwrap(),
        );
        assert_eq!(payload, ex["signed_payload"].as_str().unwrap());
        assert_eq!(
            hmac_sha256_hex(key.as_bytes(), payload.as_bytes()),
            ex["signature"].as_str().unwrap()
        );
    }
}

#[test]
fn hmac_ws_api_request_examples() {
    let v = vectors();
    let secret = Secret::hmac(v["hmac_sha256"]["secret_key"].as_str().unwrap());
    let examples =
        v["hmac_sha256"]["wsapi_request_examples_verified"]["examples"].as_array().unwrap();
    assert!(examples.len() >= 10);
    for ex in examples {
        let m = ex["method"].as_str().unwrap();
        // The signature parameter itself is excluded by the rule.
        let payload = ws_api_payload(&pairs(&ex["params"]));
        assert_eq!(payload, ex["signed_payload"].as_str().unwrap(), "{m}");
        assert_eq!(secret.sign(payload.as_bytes()), ex["signature"].as_str().unwrap(), "{m}");
    }
}

#[test]
fn ed25519_sign_verify_round_trip_and_format() {
    let v = vectors();
    let seed = [42u8; 32];
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let pem = key.to_pkcs8_pem(Default::default()).unwrap();
    let from_pem = Secret::ed25519_from_pem(&pem).unwrap();
    let from_raw = Secret::ed25519_from_bytes(&seed);
    assert!(from_pem.is_ed25519());
    for ex in v["ed25519"]["wsapi"]["examples"].as_array().unwrap() {
        let payload = ex["signed_payload"].as_str().unwrap();
        let sig = from_pem.sign(payload.as_bytes());
        // Deterministic: the same key from PEM or raw bytes signs identically.
        assert_eq!(sig, from_raw.sign(payload.as_bytes()));
        // Format: 64 bytes → 88 base64 characters with `==` padding, like the docs' examples.
        let doc_sig = ex["signature_base64"].as_str().unwrap();
        assert_eq!(sig.len(), doc_sig.len());
        assert!(sig.ends_with("=="));
        let raw = base64::engine::general_purpose::STANDARD.decode(&sig).unwrap();
        let sig = ed25519_dalek::Signature::from_slice(&raw).unwrap();
        key.verifying_key().verify(payload.as_bytes(), &sig).unwrap();
        // A changed payload does not verify.
        assert!(key.verifying_key().verify(b"tampered", &sig).is_err());
        assert_eq!(from_pem.ed25519_public_key(), Some(key.verifying_key()));
    }
}

#[test]
fn secret_loads_from_a_file_and_never_prints() {
    let dir = std::env::temp_dir().join(format!("kestrel-binance-sign-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem_path = dir.join("ed25519.pem");
    let key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    std::fs::write(&pem_path, key.to_pkcs8_pem(Default::default()).unwrap().as_bytes()).unwrap();
    let s = Secret::from_file(&pem_path).unwrap();
    assert!(s.is_ed25519());
    let hmac_path = dir.join("hmac.txt");
    std::fs::write(&hmac_path, "s3cr3t-value\n").unwrap();
    let c = Credentials::new("key", Secret::from_file(&hmac_path).unwrap());
    assert_eq!(c.sign(b"x"), hmac_sha256_hex(b"s3cr3t-value", b"x"));
    assert!(!format!("{c:?}").contains("s3cr3t"));
    assert!(Secret::from_file(&dir.join("missing")).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
