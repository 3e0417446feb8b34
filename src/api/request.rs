//! Request bodies, as Centrifugo's API defines them (`apiproto/api.proto`). Unknown fields
//! are ignored (newer clients send more); fields ringcast cannot honour are refused by
//! [`super::execute`] with a message naming them.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Debug, Deserialize)]
pub struct PublishRequest<'a> {
    #[serde(borrow, default)]
    pub channel: Cow<'a, str>,
    #[serde(borrow)]
    pub data: Option<&'a RawValue>,
    #[serde(default)]
    pub b64data: Option<String>,
    #[serde(default)]
    pub skip_history: bool,
    #[serde(default)]
    pub tags: HashMap<String, String>,
    #[serde(borrow, default)]
    pub idempotency_key: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub struct BroadcastRequest<'a> {
    #[serde(borrow, default)]
    pub channels: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    pub data: Option<&'a RawValue>,
    #[serde(default)]
    pub b64data: Option<String>,
    #[serde(default)]
    pub skip_history: bool,
    #[serde(default)]
    pub tags: HashMap<String, String>,
    #[serde(borrow, default)]
    pub idempotency_key: Option<Cow<'a, str>>,
}

#[derive(Debug, Deserialize)]
pub struct StreamPositionRequest {
    #[serde(default)]
    pub offset: u64,
    #[serde(default)]
    pub epoch: String,
}

#[derive(Debug, Deserialize)]
pub struct SubscribeRequest {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub channel: String,
    #[serde(default)]
    pub client: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct UnsubscribeRequest {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub channel: String,
    #[serde(default)]
    pub client: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DisconnectObject {
    pub code: u32,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Deserialize)]
pub struct DisconnectRequest {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub client: Option<String>,
    #[serde(default)]
    pub whitelist: Vec<String>,
    #[serde(default)]
    pub disconnect: Option<DisconnectObject>,
}

#[derive(Debug, Deserialize)]
pub struct RefreshRequest {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub client: Option<String>,
    #[serde(default)]
    pub expired: bool,
    #[serde(default)]
    pub expire_at: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct ChannelRequest<'a> {
    #[serde(borrow, default)]
    pub channel: Cow<'a, str>,
}

#[derive(Debug, Deserialize)]
pub struct HistoryRequest<'a> {
    #[serde(borrow, default)]
    pub channel: Cow<'a, str>,
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub since: Option<StreamPositionRequest>,
    #[serde(default)]
    pub reverse: bool,
}

#[derive(Debug, Deserialize)]
pub struct ChannelsRequest {
    #[serde(default)]
    pub pattern: String,
}

#[derive(Debug, Deserialize)]
pub struct BatchRequest<'a> {
    /// Each command: `{"<method>": {…request…}}`.
    #[serde(borrow, default)]
    pub commands: Vec<HashMap<Cow<'a, str>, &'a RawValue>>,
    #[serde(default)]
    pub parallel: bool,
}

/// The legacy single endpoint: `POST /api` with `{"method": …, "params": {…}}`.
#[derive(Debug, Deserialize)]
pub struct LegacyRequest<'a> {
    #[serde(borrow)]
    pub method: Cow<'a, str>,
    #[serde(borrow)]
    pub params: Option<&'a RawValue>,
}
