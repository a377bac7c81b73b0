//! Where the exchange lives: REST, market-data stream and WebSocket API base URLs.
//!
//! Every URL kestrel dials comes from an [`Endpoints`] value (STYLE.md 2.7, mistake 3): the
//! mainnet and testnet presets below are data, and [`Endpoints::from_base`] points the same code
//! at the simulator or any other host. No other module holds a URL.

use url::Url;

/// One preset's URLs as text; parsed once by [`Endpoints::preset`].
struct Preset {
    /// REST base; request paths (`/api/v3/...`) are appended to it.
    rest: &'static str,
    /// Market-stream base; market data appends `/ws/<stream>` or `/stream?streams=...`.
    ws_stream: &'static str,
    /// WebSocket API URL, dialled as is.
    ws_api: &'static str,
}

/// Binance Spot mainnet (SPEC.md §1: rest-api.md, web-socket-streams.md, web-socket-api.md).
const MAINNET: Preset = Preset {
    rest: "https://api.binance.com",
    ws_stream: "wss://stream.binance.com:9443",
    ws_api: "wss://ws-api.binance.com:443/ws-api/v3",
};

/// Binance Spot testnet (SPEC.md §1: testnet/general-info.md). The docs write the REST base as
/// `https://testnet.binance.vision/api`; that `/api` is the first segment of every request path,
/// so the base here stops at the host.
const TESTNET: Preset = Preset {
    rest: "https://testnet.binance.vision",
    ws_stream: "wss://stream.testnet.binance.vision",
    ws_api: "wss://ws-api.testnet.binance.vision/ws-api/v3",
};

/// The three base URLs of one Binance Spot environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// REST base URL (scheme, host, optional port and path prefix). Request paths such as
    /// `/api/v3/depth` are appended to it by [`Endpoints::rest_url`].
    pub rest: Url,
    /// Market-data stream base URL; `/ws/<name>` or `/stream?streams=..` is appended.
    pub ws_stream: Url,
    /// WebSocket API URL (order entry, user data), dialled exactly as given.
    pub ws_api: Url,
}

impl Endpoints {
    /// Binance Spot mainnet.
    pub fn mainnet() -> Self {
        Self::preset(&MAINNET)
    }

    /// Binance Spot testnet (virtual funds, reset about monthly).
    pub fn testnet() -> Self {
        Self::preset(&TESTNET)
    }

    /// Custom endpoints: the simulator, a proxy, or another Binance host (`api1`…`api4`).
    pub fn from_base(rest: Url, ws_stream: Url, ws_api: Url) -> Self {
        Self { rest, ws_stream, ws_api }
    }

    fn preset(p: &Preset) -> Self {
        let parse = |s: &str| Url::parse(s).expect("invariant: preset URLs are valid literals");
        Self { rest: parse(p.rest), ws_stream: parse(p.ws_stream), ws_api: parse(p.ws_api) }
    }

    /// The full URL of a REST path (`"/api/v3/depth"`), keeping any path prefix of the base.
    /// The query is left empty; the caller sets it (signed requests build it byte by byte).
    pub fn rest_url(&self, path: &str) -> Url {
        let mut url = self.rest.clone();
        let joined =
            format!("{}/{}", url.path().trim_end_matches('/'), path.trim_start_matches('/'));
        url.set_path(&joined);
        url.set_query(None);
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_and_match_the_docs() {
        let m = Endpoints::mainnet();
        assert_eq!(m.rest.as_str(), "https://api.binance.com/");
        assert_eq!(m.ws_stream.as_str(), "wss://stream.binance.com:9443/");
        assert_eq!(m.ws_api.as_str(), "wss://ws-api.binance.com/ws-api/v3");
        let t = Endpoints::testnet();
        assert_eq!(
            t.rest_url("/api/v3/depth").as_str(),
            "https://testnet.binance.vision/api/v3/depth"
        );
        assert_eq!(t.ws_api.as_str(), "wss://ws-api.testnet.binance.vision/ws-api/v3");
    }

    #[test]
    fn rest_url_keeps_a_path_prefix() {
        // TC0: bare host; TC1: prefix with trailing slash; TC2: prefix without.
        let cases = [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080/api/v3/time"),
            ("http://127.0.0.1:8080/sim/", "http://127.0.0.1:8080/sim/api/v3/time"),
            ("http://127.0.0.1:8080/sim", "http://127.0.0.1:8080/sim/api/v3/time"),
        ];
        for (i, (base, want)) in cases.iter().enumerate() {
            let u = Url::parse(base).unwrap();
            let e = Endpoints::from_base(u.clone(), u.clone(), u);
            assert_eq!(e.rest_url("/api/v3/time").as_str(), *want, "TC{i}");
        }
    }
}
