//! Signing: every worked example in testdata/binance/signing.json.
