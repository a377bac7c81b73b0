//! Golden tests: Binance doc payloads in testdata/binance/ parse to the expected values.
