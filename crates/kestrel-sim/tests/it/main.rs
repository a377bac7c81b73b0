//! Integration tests: the simulator over real sockets, driven by raw reqwest and
//! tokio-tungstenite clients (never kestrel-binance).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod depth;
mod errors;
mod faults;
mod limits;
mod matching;
mod my_trades;
mod offline;
mod signing;
mod vectors;
mod ws_api;
mod ws_streams;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use kestrel_sim::{AccountConfig, ApiKeyConfig, Sim, SimConfig, SimHandle};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;
use sha2::Sha256;
use tokio_tungstenite::tungstenite::Message;

/// Start time of the manual clock in tests.
pub const T0: u64 = 1_750_000_000_000;

/// Characters left unencoded in query strings (RFC 3986 unreserved).
const QUERY: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Second user's HMAC key.
pub const BOB_KEY: &str = "bobKey000000000000000000000000000000000000000000000000000000000001";
/// Second user's HMAC secret.
pub const BOB_SECRET: &str = "bobSecret0000000000000000000000000000000000000000000000000000001";

/// Default market, manual stepping, manual clock at [`T0`], plus a second account "bob".
pub fn test_config() -> SimConfig {
    let mut c = SimConfig::default_market();
    c.manual_market = true;
    c.start_time_ms = Some(T0);
    c.accounts.push(AccountConfig {
        name: "bob".into(),
        api_keys: vec![ApiKeyConfig {
            api_key: BOB_KEY.into(),
            hmac_secret: Some(BOB_SECRET.into()),
            ed25519_public_key_pem: None,
        }],
        balances: [("USDT", "100000"), ("BTC", "2")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        maker_fee_bps: 10,
        taker_fee_bps: 10,
    });
    c
}

/// Starts a simulator on an ephemeral port.
pub async fn start(cfg: SimConfig) -> SimHandle {
    Sim::start(cfg, "127.0.0.1:0").await.unwrap()
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    utf8_percent_encode(s, QUERY).to_string()
}

/// HMAC-SHA256 hex.
pub fn hmac_hex(secret: &str, payload: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(payload.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// A raw REST client with one HMAC key.
#[derive(Debug)]
pub struct Rest {
    pub http: reqwest::Client,
    pub base: String,
    pub key: String,
    pub secret: String,
}

/// A REST answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The error code of an error body.
    pub fn code(&self) -> i64 {
        self.body["code"].as_i64().unwrap_or(0)
    }
}

impl Rest {
    /// Client for the demo account.
    pub fn demo(sim: &SimHandle) -> Self {
        Self::with_key(
            sim,
            kestrel_sim::config::DEMO_HMAC_API_KEY,
            kestrel_sim::config::DEMO_HMAC_SECRET,
        )
    }

    /// Client for "bob".
    pub fn bob(sim: &SimHandle) -> Self {
        Self::with_key(sim, BOB_KEY, BOB_SECRET)
    }

    /// Client for any key.
    pub fn with_key(sim: &SimHandle, key: &str, secret: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: sim.rest_url(),
            key: key.into(),
            secret: secret.into(),
        }
    }

    /// Sends a raw request: `query` and `body` exactly as given.
    pub async fn raw(&self, method: &str, path: &str, query: &str, body: Option<&str>) -> Answer {
        let url = if query.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{query}", self.base)
        };
        let mut rb =
            self.http.request(method.parse().unwrap(), url).header("X-MBX-APIKEY", &self.key);
        if let Some(b) = body {
            rb = rb.header("content-type", "application/x-www-form-urlencoded").body(b.to_string());
        }
        let r = tokio::time::timeout(Duration::from_secs(10), rb.send()).await.unwrap().unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("non-JSON body {status}: {text:?}"));
        Answer { status, headers, body }
    }

    /// Public GET.
    pub async fn get(&self, path: &str, query: &str) -> Answer {
        self.raw("GET", path, query, None).await
    }

    /// Signed request with params in the query; `timestamp` appended.
    pub async fn signed(
        &self,
        method: &str,
        path: &str,
        params: &[(&str, &str)],
        ts: u64,
    ) -> Answer {
        let mut q: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
        q.push(format!("timestamp={ts}"));
        let q = q.join("&");
        let sig = hmac_hex(&self.secret, &q);
        self.raw(method, path, &format!("{q}&signature={sig}"), None).await
    }
}

/// Connects a WebSocket client.
pub async fn ws_connect(url: &str) -> Ws {
    let (s, _) =
        tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(url))
            .await
            .unwrap()
            .unwrap();
    Ws { s }
}

/// A raw WebSocket client.
#[derive(Debug)]
pub struct Ws {
    pub s: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Ws {
    /// Sends a JSON text frame.
    pub async fn send(&mut self, v: &Value) {
        self.s.send(Message::text(v.to_string())).await.unwrap();
    }

    /// Next text frame as JSON (skipping pings/pongs), or None on close/timeout.
    pub async fn next_json(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let m = tokio::time::timeout(wait, self.s.next()).await.ok()??.ok()?;
            match m {
                Message::Text(t) => return serde_json::from_str(t.as_str()).ok(),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Next text frame whose JSON satisfies `pred`.
    pub async fn next_where(&mut self, wait: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let v = self.next_json(left).await.expect("stream ended before the expected message");
            if pred(&v) {
                return v;
            }
        }
    }

    /// WS API request/response.
    pub async fn call(&mut self, id: &str, method: &str, params: Value) -> Value {
        self.send(&serde_json::json!({"id": id, "method": method, "params": params})).await;
        self.next_where(Duration::from_secs(5), |v| v["id"] == id).await
    }
}

/// Waits until `cond` holds, checking every few ms, failing after `limit`.
pub async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "condition not reached within {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Loads a doc vector.
pub fn vector(name: &str) -> Value {
    let path = format!("{}/../../testdata/binance/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Asserts `ours` has the same field names and JSON types as the doc vector `doc`, recursively
/// (arrays compared by their first elements). `optional` lists doc fields we may omit.
pub fn assert_shape(doc: &Value, ours: &Value, optional: &[&str], path: &str) {
    match (doc, ours) {
        (Value::Object(d), Value::Object(o)) => {
            for (k, dv) in d {
                match o.get(k) {
                    Some(ov) => assert_shape(dv, ov, optional, &format!("{path}.{k}")),
                    None => assert!(
                        optional.contains(&k.as_str()),
                        "{path}: missing field {k:?} (ours: {ours})"
                    ),
                }
            }
            for k in o.keys() {
                assert!(
                    d.contains_key(k) || optional.contains(&k.as_str()),
                    "{path}: extra field {k:?} not in the doc vector"
                );
            }
        }
        (Value::Array(d), Value::Array(o)) => {
            if let (Some(d0), Some(o0)) = (d.first(), o.first()) {
                assert_shape(d0, o0, optional, &format!("{path}[0]"));
            }
        }
        _ => assert_eq!(kind(doc), kind(ours), "{path}: doc {doc} vs ours {ours}"),
    }
}
