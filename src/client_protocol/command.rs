//! Commands a client sends: `{"id":N,"<method>":{…}}`, parsed in place.
//!
//! Strings borrow from the frame where they have no escapes (`Cow`), and `data` stays the
//! client's raw JSON (`&RawValue`): it is checked to be JSON once here and never re-encoded.
//! Unknown fields are ignored (newer SDKs send fields older servers do not know).

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

/// One command. Only the first request object present is acted on (Centrifugo's rule: the
/// protocol does not use `oneof`, for JSON interoperability).
#[derive(Debug, Default, Deserialize)]
pub struct Command<'a> {
    #[serde(default)]
    pub id: u32,
    #[serde(borrow, default)]
    pub connect: Option<ConnectRequest<'a>>,
    #[serde(borrow, default)]
    pub subscribe: Option<SubscribeRequest<'a>>,
    #[serde(borrow, default)]
    pub unsubscribe: Option<ChannelRequest<'a>>,
    #[serde(borrow, default)]
    pub publish: Option<PublishRequest<'a>>,
    #[serde(borrow, default)]
    pub presence: Option<ChannelRequest<'a>>,
    #[serde(borrow, default)]
    pub presence_stats: Option<ChannelRequest<'a>>,
    #[serde(borrow, default)]
    pub history: Option<HistoryRequest<'a>>,
    #[serde(default)]
    pub ping: Option<Empty>,
    #[serde(borrow, default)]
    pub send: Option<SendRequest<'a>>,
    #[serde(borrow, default)]
    pub rpc: Option<RpcRequest<'a>>,
    #[serde(borrow, default)]
    pub refresh: Option<RefreshRequest<'a>>,
    #[serde(borrow, default)]
    pub sub_refresh: Option<SubRefreshRequest<'a>>,
}

/// What a command asks for, once decoded.
#[derive(Debug)]
pub enum Request<'c, 'a> {
    Connect(&'c ConnectRequest<'a>),
    Subscribe(&'c SubscribeRequest<'a>),
    Unsubscribe(&'c ChannelRequest<'a>),
    Publish(&'c PublishRequest<'a>),
    Presence(&'c ChannelRequest<'a>),
    PresenceStats(&'c ChannelRequest<'a>),
    History(&'c HistoryRequest<'a>),
    Ping,
    Send(&'c SendRequest<'a>),
    Rpc(&'c RpcRequest<'a>),
    Refresh(&'c RefreshRequest<'a>),
    SubRefresh(&'c SubRefreshRequest<'a>),
    /// No request object: with id 0 this is the client's pong; with an id, an unknown method.
    None,
}

impl<'a> Command<'a> {
    pub fn request(&self) -> Request<'_, 'a> {
        if let Some(r) = &self.connect {
            Request::Connect(r)
        } else if let Some(r) = &self.subscribe {
            Request::Subscribe(r)
        } else if let Some(r) = &self.unsubscribe {
            Request::Unsubscribe(r)
        } else if let Some(r) = &self.publish {
            Request::Publish(r)
        } else if let Some(r) = &self.presence {
            Request::Presence(r)
        } else if let Some(r) = &self.presence_stats {
            Request::PresenceStats(r)
        } else if let Some(r) = &self.history {
            Request::History(r)
        } else if self.ping.is_some() {
            Request::Ping
        } else if let Some(r) = &self.send {
            Request::Send(r)
        } else if let Some(r) = &self.rpc {
            Request::Rpc(r)
        } else if let Some(r) = &self.refresh {
            Request::Refresh(r)
        } else if let Some(r) = &self.sub_refresh {
            Request::SubRefresh(r)
        } else {
            Request::None
        }
    }
}

/// `{}` (fields ignored).
#[derive(Debug, Default, Deserialize)]
pub struct Empty {}

#[derive(Debug, Default, Deserialize)]
pub struct ConnectRequest<'a> {
    #[serde(borrow, default)]
    pub token: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
    /// Server-side subscriptions the client wants recovered (accepted, not used until the
    /// engine keeps history).
    #[serde(borrow, default)]
    pub subs: Option<HashMap<Cow<'a, str>, SubscribeRequest<'a>>>,
    #[serde(borrow, default)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub version: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SubscribeRequest<'a> {
    #[serde(borrow, default)]
    pub channel: Cow<'a, str>,
    #[serde(borrow, default)]
    pub token: Option<Cow<'a, str>>,
    #[serde(default)]
    pub recover: bool,
    #[serde(borrow, default)]
    pub epoch: Option<Cow<'a, str>>,
    #[serde(default)]
    pub offset: u64,
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
    #[serde(default)]
    pub positioned: bool,
    #[serde(default)]
    pub recoverable: bool,
    #[serde(default)]
    pub join_leave: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChannelRequest<'a> {
    #[serde(borrow, default)]
    pub channel: Cow<'a, str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PublishRequest<'a> {
    #[serde(borrow, default)]
    pub channel: Cow<'a, str>,
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamPosition<'a> {
    #[serde(default)]
    pub offset: u64,
    #[serde(borrow, default)]
    pub epoch: Cow<'a, str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct HistoryRequest<'a> {
    #[serde(borrow, default)]
    pub channel: Cow<'a, str>,
    #[serde(default)]
    pub limit: i32,
    #[serde(borrow, default)]
    pub since: Option<StreamPosition<'a>>,
    #[serde(default)]
    pub reverse: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct SendRequest<'a> {
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RpcRequest<'a> {
    #[serde(borrow, default)]
    pub method: Cow<'a, str>,
    #[serde(borrow, default)]
    pub data: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RefreshRequest<'a> {
    #[serde(borrow, default)]
    pub token: Cow<'a, str>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SubRefreshRequest<'a> {
    #[serde(borrow, default)]
    pub channel: Cow<'a, str>,
    #[serde(borrow, default)]
    pub token: Cow<'a, str>,
}
