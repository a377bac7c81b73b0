//! [`OrderGateway`]: order entry over REST or the WebSocket API, chosen by the binary's
//! `order_transport = "rest" | "ws-api"`. Both paths build the same parameters
//! ([`NewOrder::params`]), parse the same response shape, and follow the same rules:
//! `-1021` re-measures the clock offset (REST `time`) and retries once; an unknown outcome
//! (timeout, 5xx, `-1007`, connection lost in flight) is returned as such and never retried
//! (scenario S01).

use kestrel_model::{OrderUpdate, Symbol};

use crate::error::BinanceError;
use crate::rest::{NewOrder, OrderRef, Placed, RestClient};
use crate::ws_api::WsApiClient;

/// The order transport.
#[derive(Debug, Clone)]
pub enum OrderGateway {
    /// Signed REST calls.
    Rest(RestClient),
    /// WebSocket API requests; the REST client measures the clock offset on `-1021` and
    /// serves open-order queries across all symbols.
    WsApi {
        /// The session that carries orders.
        ws: WsApiClient,
        /// For `time` and `openOrders` without a symbol.
        rest: RestClient,
    },
}

impl OrderGateway {
    /// `"rest"` or `"ws-api"`.
    pub fn transport_name(&self) -> &'static str {
        match self {
            Self::Rest(_) => "rest",
            Self::WsApi { .. } => "ws-api",
        }
    }

    /// Places an order.
    pub async fn place(&self, order: &NewOrder) -> Result<Placed, BinanceError> {
        match self {
            Self::Rest(r) => r.place_order(order).await,
            Self::WsApi { ws, rest } => match ws.place_order(order).await {
                Err(e) if e.is_clock_skew() => {
                    rest.sync_time().await?;
                    ws.place_order(order).await
                }
                other => other,
            },
        }
    }

    /// Cancels one order.
    pub async fn cancel(
        &self,
        symbol: Symbol,
        which: OrderRef,
    ) -> Result<OrderUpdate, BinanceError> {
        match self {
            Self::Rest(r) => r.cancel_order(symbol, which).await,
            Self::WsApi { ws, rest } => match ws.cancel_order(symbol, which).await {
                Err(e) if e.is_clock_skew() => {
                    rest.sync_time().await?;
                    ws.cancel_order(symbol, which).await
                }
                other => other,
            },
        }
    }

    /// Queries one order (resolves an unknown outcome).
    pub async fn query(
        &self,
        symbol: Symbol,
        which: OrderRef,
    ) -> Result<OrderUpdate, BinanceError> {
        match self {
            Self::Rest(r) => r.query_order(symbol, which).await,
            Self::WsApi { ws, rest } => match ws.query_order(symbol, which).await {
                Err(e) if e.is_clock_skew() => {
                    rest.sync_time().await?;
                    ws.query_order(symbol, which).await
                }
                other => other,
            },
        }
    }

    /// Cancels every open order on a symbol.
    pub async fn cancel_all(&self, symbol: Symbol) -> Result<Vec<OrderUpdate>, BinanceError> {
        match self {
            Self::Rest(r) => r.cancel_all(symbol).await,
            Self::WsApi { ws, rest } => match ws.cancel_all(symbol).await {
                Err(e) if e.is_clock_skew() => {
                    rest.sync_time().await?;
                    ws.cancel_all(symbol).await
                }
                other => other,
            },
        }
    }

    /// Open orders, on one symbol or all (all always over REST).
    pub async fn open_orders(
        &self,
        symbol: Option<Symbol>,
    ) -> Result<Vec<OrderUpdate>, BinanceError> {
        match (self, symbol) {
            (Self::WsApi { ws, .. }, Some(s)) => ws.open_orders(s).await,
            (Self::Rest(r), s) | (Self::WsApi { rest: r, .. }, s) => r.open_orders(s).await,
        }
    }
}
