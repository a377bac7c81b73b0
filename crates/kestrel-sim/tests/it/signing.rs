//! Every worked signing example of testdata/binance/signing.json is accepted (REST and WS API),
//! with the docs' key and the server clock set to the example's timestamp; tampering is refused.

use serde_json::{json, Value};

use super::*;

fn docs_config() -> SimConfig {
    let v = vector("signing.json");
    let h = &v["hmac_sha256"];
    let mut c = test_config();
    let mut sym = c.symbols[0].clone();
    sym.symbol = "LTCBTC".into();
    sym.base = "LTC".into();
    sym.quote = "BTC".into();
    sym.tick_size = "0.00001".into();
    sym.min_price = "0.00001".into();
    sym.step_size = "0.01".into();
    sym.min_qty = "0.01".into();
    sym.min_notional = "0.0001".into();
    sym.initial_mid = "0.1".into();
    sym.level_qty = "10".into();
    sym.trade_qty = "0.1".into();
    let mut wide = sym.clone();
    wide.symbol = "１２３４５６".into();
    wide.base = "ABC".into();
    c.symbols.push(sym);
    c.symbols.push(wide);
    c.symbols[0].initial_mid = "52000".into();
    c.accounts.push(AccountConfig {
        name: "docs".into(),
        api_keys: vec![ApiKeyConfig {
            api_key: h["api_key"].as_str().unwrap().into(),
            hmac_secret: Some(h["secret_key"].as_str().unwrap().into()),
            ed25519_public_key_pem: None,
        }],
        balances: [("BTC", "100"), ("LTC", "100"), ("USDT", "100000"), ("ABC", "100")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        maker_fee_bps: 10,
        taker_fee_bps: 10,
    });
    c
}

fn docs_rest(sim: &SimHandle) -> Rest {
    let v = vector("signing.json");
    Rest::with_key(
        sim,
        v["hmac_sha256"]["api_key"].as_str().unwrap(),
        v["hmac_sha256"]["secret_key"].as_str().unwrap(),
    )
}

#[tokio::test]
async fn rest_hmac_worked_examples_are_accepted() {
    let sim = start(docs_config()).await;
    let c = docs_rest(&sim);
    let v = vector("signing.json");
    for ex in v["hmac_sha256"]["worked_examples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["api"] == "REST")
    {
        sim.set_time_ms(ex["params"]["timestamp"].as_str().unwrap().parse().unwrap());
        let url = ex["request_url"].as_str().unwrap();
        let query = url.split_once('?').unwrap().1;
        let a = c.raw("POST", "/api/v3/order", query, None).await;
        assert_eq!(a.status, 200, "{}: {:?}", ex["id"], a.body);
        assert_eq!(a.body["symbol"], ex["params"]["symbol"], "{}", ex["id"]);
        // Uppercase hex is the same signature.
        let upper = query.replace(
            ex["signature"].as_str().unwrap(),
            &ex["signature"].as_str().unwrap().to_uppercase(),
        );
        assert_eq!(
            c.raw("POST", "/api/v3/order/test", &upper, None).await.status,
            200,
            "{}",
            ex["id"]
        );
        // Tampering with any byte breaks it.
        let tampered = query.replace("quantity=1", "quantity=2");
        let a = c.raw("POST", "/api/v3/order", &tampered, None).await;
        assert_eq!((a.status, a.code()), (400, -1022), "{}", ex["id"]);
    }
    // The historical mixed query + body example: joined with no separator.
    let h = &v["hmac_sha256"]["historical_examples"][0];
    sim.set_time_ms(1_499_827_319_559);
    let q = format!(
        "{}&signature={}",
        h["query_string"].as_str().unwrap(),
        h["signature"].as_str().unwrap()
    );
    let a = c.raw("POST", "/api/v3/order", &q, Some(h["request_body"].as_str().unwrap())).await;
    assert_eq!(a.status, 200, "mixed: {:?}", a.body);
    sim.shutdown().await;
}

#[tokio::test]
async fn rest_unencoded_non_ascii_payload_is_refused() {
    let sim = start(docs_config()).await;
    let c = docs_rest(&sim);
    let v = vector("signing.json");
    let ex = &v["hmac_sha256"]["worked_examples"][1];
    sim.set_time_ms(1_499_827_319_559);
    let unencoded = ex["unencoded_payload"].as_str().unwrap();
    let secret = v["hmac_sha256"]["secret_key"].as_str().unwrap();
    // The client signed the raw UTF-8 and sent it unencoded in the body: -1022 since 2026-01-15.
    let body = format!("{unencoded}&signature={}", hmac_hex(secret, unencoded));
    let a = c.raw("POST", "/api/v3/order", "", Some(&body)).await;
    assert_eq!((a.status, a.code()), (400, -1022), "{:?}", a.body);
    sim.shutdown().await;
}

#[tokio::test]
async fn wsapi_worked_and_verified_examples_are_accepted() {
    let sim = start(docs_config()).await;
    let v = vector("signing.json");
    let mut ws = ws_connect(&sim.ws_api_url()).await;
    // TC0..: the two worked order.place examples are placed.
    for ex in v["hmac_sha256"]["worked_examples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["api"] == "WebSocket API")
    {
        sim.set_time_ms(ex["params"]["timestamp"].as_u64().unwrap());
        let mut params = ex["params"].clone();
        params["signature"] = ex["signature"].clone();
        let r = ws.call(ex["id"].as_str().unwrap(), "order.place", params.clone()).await;
        assert_eq!(r["status"], 200, "{}: {r}", ex["id"]);
        params["quantity"] = json!("2.00000000");
        let r = ws.call("tampered", "order.place", params).await;
        assert_eq!(r["error"]["code"], -1022, "{}: {r}", ex["id"]);
    }
    // Verified request examples of methods the simulator implements: the signature passes, so
    // the answer is the method's own (not -1022).
    let expect: &[(&str, Option<i64>)] = &[
        ("session.logon", Some(-1002)),
        ("order.place", None),
        ("order.test", None),
        ("order.cancel", Some(-2011)),
        ("openOrders.cancelAll", None),
        ("account.status", None),
        ("order.status", Some(-2013)),
        ("openOrders.status", None),
    ];
    for ex in v["hmac_sha256"]["wsapi_request_examples_verified"]["examples"].as_array().unwrap() {
        let method = ex["method"].as_str().unwrap();
        let Some((_, want)) = expect.iter().find(|(m, _)| *m == method) else { continue };
        sim.set_time_ms(ex["params"]["timestamp"].as_u64().unwrap());
        let r = ws.call(method, method, ex["params"].clone()).await;
        match want {
            None => assert_eq!(r["status"], 200, "{method}: {r}"),
            Some(code) => assert_eq!(r["error"]["code"], *code, "{method}: {r}"),
        }
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn wsapi_payload_is_sorted_raw_utf8() {
    // The non-ASCII WS example signs the raw symbol (not percent-encoded) in sorted order.
    let v = vector("signing.json");
    let ex = &v["hmac_sha256"]["worked_examples"][3];
    let payload = ex["signed_payload"].as_str().unwrap();
    assert!(payload.contains("symbol=１２３４５６"));
    assert_eq!(
        hmac_hex(v["hmac_sha256"]["secret_key"].as_str().unwrap(), payload),
        ex["signature"].as_str().unwrap()
    );
    let _: Value = ex["params"].clone();
}

#[tokio::test]
async fn rest_ed25519_signature_is_accepted_and_checked() {
    use base64::Engine as _;
    use ed25519_dalek::Signer;
    let sim = start(test_config()).await;
    let c = Rest::with_key(&sim, kestrel_sim::config::DEMO_ED25519_API_KEY, "");
    let sk = ed25519_dalek::SigningKey::from_bytes(&kestrel_sim::config::DEMO_ED25519_SEED);
    let q = format!("timestamp={}", sim.server_time_ms());
    let sig = base64::engine::general_purpose::STANDARD.encode(sk.sign(q.as_bytes()).to_bytes());
    // Base64 has `+`, `/`, `=`: percent-encoded in the URL, decoded before verifying.
    let a = c.raw("GET", "/api/v3/account", &format!("{q}&signature={}", enc(&sig)), None).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let other =
        base64::engine::general_purpose::STANDARD.encode(sk.sign(b"timestamp=1").to_bytes());
    let a = c.raw("GET", "/api/v3/account", &format!("{q}&signature={}", enc(&other)), None).await;
    assert_eq!(a.code(), -1022);
    sim.shutdown().await;
}
