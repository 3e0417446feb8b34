//! One API call: decode the body, check it, do it, encode the answer.
//!
//! Answers follow Centrifugo: HTTP 200 with `{"result":{…}}` or `{"error":{"code","message"}}`
//! (codes of the client protocol: 102 unknown channel, 107 bad request, 108 not available, 112
//! unrecoverable position, 100 internal); HTTP 400 only when the body is not JSON at all and
//! 404 for an unknown method. The API is trusted: no channel permissions apply, only the
//! channel's namespace must exist.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;
use tracing::info;

use super::idempotency::Idempotency;
use super::request::*;
use super::{ApiHost, Method, Node, SessionCommand, Sessions, Survey};
use crate::client_protocol::Disconnect;
use crate::client_protocol::codes::{ClientError, MAX_REASON_LEN};
use crate::client_protocol::reply::ClientInfo;
use crate::config::AppConfig;
use crate::engine::{HistoryOptions, HistoryQuery, StreamPosition};
use crate::session::{history_options, raw_publications};

const AUDIT: &str = "ringcast::audit";
/// Most commands in one `batch`.
pub const MAX_BATCH: usize = 1000;
/// Idempotency keys remembered.
pub const IDEMPOTENCY_KEYS: usize = 100_000;

/// An HTTP status and a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: u16,
    pub body: Vec<u8>,
    /// The API error code, if the call failed (for logs and metrics).
    pub error: Option<u32>,
}

type Answer = Result<Vec<u8>, ClientError>;

/// The API: configuration, this node, remembered idempotency keys.
pub struct Api {
    cfg: Arc<AppConfig>,
    node: Node,
    pub idempotency: Idempotency,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: u32,
    message: &'a str,
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorBody<'a>,
}

fn error_body(e: &ClientError) -> Vec<u8> {
    serde_json::to_vec(&ErrorEnvelope {
        error: ErrorBody {
            code: e.code,
            message: &e.message,
        },
    })
    .expect("serialising to a Vec cannot fail")
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialising to a Vec cannot fail")
}

fn decode<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|e| ClientError::BAD_REQUEST.with_detail(e))
}

fn required(what: &str, value: &str) -> Result<(), ClientError> {
    if value.is_empty() {
        Err(ClientError::BAD_REQUEST.with_detail(format_args!("{what} required")))
    } else {
        Ok(())
    }
}

#[derive(Serialize, Default)]
struct PublishResult<'a> {
    #[serde(skip_serializing_if = "is_zero")]
    offset: u64,
    #[serde(skip_serializing_if = "str::is_empty")]
    epoch: &'a str,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One node in `info`'s answer (Centrifugo's fields): its figures, with its uptime.
#[derive(serde::Serialize)]
struct NodeInfo<'a> {
    uid: &'a str,
    name: &'a str,
    version: &'a str,
    /// Seconds since the node started.
    uptime: u64,
    num_clients: u64,
    num_users: u64,
    num_channels: u64,
    num_subs: u64,
}

impl<'a> NodeInfo<'a> {
    fn of(f: &'a crate::cluster::NodeFigures, now_unix: u64) -> Self {
        Self {
            uid: &f.uid,
            name: &f.name,
            version: &f.version,
            uptime: now_unix.saturating_sub(f.started),
            num_clients: f.num_clients,
            num_users: f.num_users,
            num_channels: f.num_channels,
            num_subs: f.num_subs,
        }
    }
}

fn publish_result(p: &Option<StreamPosition>) -> Vec<u8> {
    json(
        &p.as_ref()
            .map_or(PublishResult::default(), |p| PublishResult {
                offset: p.offset,
                epoch: &p.epoch,
            }),
    )
}

/// `*` matches any run of characters; everything else itself.
pub fn glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    if !name.ends_with(last) {
        return false;
    }
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

impl Api {
    pub fn new(cfg: Arc<AppConfig>, node: Node) -> Self {
        Self {
            cfg,
            node,
            idempotency: Idempotency::new(IDEMPOTENCY_KEYS, super::idempotency::DEFAULT_TTL),
        }
    }

    /// `POST /api/<method>` with `body`. `survey` must be given for methods that
    /// [`Method::needs_survey`] (and for a batch containing one); `now` is (monotonic, unix s).
    pub fn call(
        &mut self,
        method: Option<Method>,
        name: &str,
        body: &[u8],
        host: &dyn ApiHost,
        survey: Option<&Survey>,
        now: (Instant, u64),
    ) -> Outcome {
        let Some(method) = method else {
            let e = ClientError::METHOD_NOT_FOUND.with_detail(format_args!(
                "no API method {name:?} (POST /api/<method>: publish, broadcast, subscribe, \
                 unsubscribe, disconnect, refresh, presence, presence_stats, history, \
                 history_remove, channels, info, rpc, batch)"
            ));
            return Outcome {
                status: 404,
                body: error_body(&e),
                error: Some(e.code),
            };
        };
        let answer = if method == Method::Batch {
            self.batch(body, host, survey, now)
        } else {
            self.one(method, body, host, survey, now)
        };
        // Each method decodes its body once; only a refused one is checked for being JSON at
        // all (HTTP 400 then, instead of a 107 answer).
        if let Err(e) = &answer
            && e.code == ClientError::BAD_REQUEST.code
            && let Err(why) = serde_json::from_slice::<serde::de::IgnoredAny>(body)
        {
            let e = ClientError::BAD_REQUEST.with_detail(format_args!("body is not JSON: {why}"));
            return Outcome {
                status: 400,
                body: error_body(&e),
                error: Some(e.code),
            };
        }
        match answer {
            Ok(result) => {
                let mut out = Vec::with_capacity(result.len() + 11);
                out.extend_from_slice(b"{\"result\":");
                out.extend_from_slice(&result);
                out.push(b'}');
                Outcome {
                    status: 200,
                    body: out,
                    error: None,
                }
            }
            Err(e) => Outcome {
                status: 200,
                body: error_body(&e),
                error: Some(e.code),
            },
        }
    }

    /// The legacy `POST /api` body `{"method": …, "params": {…}}`.
    pub fn call_legacy(
        &mut self,
        body: &[u8],
        host: &dyn ApiHost,
        survey: Option<&Survey>,
        now: (Instant, u64),
    ) -> Outcome {
        match serde_json::from_slice::<LegacyRequest<'_>>(body) {
            Ok(r) => {
                let params = r.params.map_or("{}", |p| p.get());
                self.call(
                    Method::parse(&r.method),
                    &r.method,
                    params.as_bytes(),
                    host,
                    survey,
                    now,
                )
            }
            Err(e) => {
                let e = ClientError::BAD_REQUEST.with_detail(format_args!(
                    "expected {{\"method\":…,\"params\":{{…}}}}: {e}"
                ));
                Outcome {
                    status: 400,
                    body: error_body(&e),
                    error: Some(e.code),
                }
            }
        }
    }

    /// The method named in a legacy body (for the caller to know whether to survey).
    pub fn legacy_method(body: &[u8]) -> Option<Method> {
        serde_json::from_slice::<LegacyRequest<'_>>(body)
            .ok()
            .and_then(|r| Method::parse(&r.method))
    }

    /// Whether a batch body contains a method that needs a survey.
    /// Whether a batch (its body) has a command whose method is `which`.
    pub fn batch_has(body: &[u8], which: fn(Method) -> bool) -> bool {
        serde_json::from_slice::<BatchRequest<'_>>(body).is_ok_and(|b| {
            b.commands
                .iter()
                .flat_map(|c| c.keys())
                .any(|k| Method::parse(k).is_some_and(which))
        })
    }

    fn batch(
        &mut self,
        body: &[u8],
        host: &dyn ApiHost,
        survey: Option<&Survey>,
        now: (Instant, u64),
    ) -> Answer {
        let r: BatchRequest<'_> = decode(body)?;
        if r.commands.len() > MAX_BATCH {
            return Err(ClientError::BAD_REQUEST.with_detail(format_args!(
                "{} commands in a batch, at most {MAX_BATCH}",
                r.commands.len()
            )));
        }
        let mut out = b"{\"replies\":[".to_vec();
        for (i, command) in r.commands.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let mut entries = command.iter();
            let reply = match (entries.next(), entries.next()) {
                (Some((name, body)), None) => match Method::parse(name) {
                    Some(Method::Batch) | None => Err(ClientError::METHOD_NOT_FOUND
                        .with_detail(format_args!("{name:?} in a batch"))),
                    Some(m) => self
                        .one(m, body.get().as_bytes(), host, survey, now)
                        .map(|r| (m, r)),
                },
                _ => Err(ClientError::BAD_REQUEST
                    .with_detail("each batch command is one {\"<method>\": {…}} object")),
            };
            match reply {
                Ok((m, result)) => {
                    out.extend_from_slice(b"{\"");
                    out.extend_from_slice(m.name().as_bytes());
                    out.extend_from_slice(b"\":");
                    out.extend_from_slice(&result);
                    out.push(b'}');
                }
                Err(e) => out.extend_from_slice(&error_body(&e)),
            }
        }
        out.extend_from_slice(b"]}");
        Ok(out)
    }

    fn one(
        &mut self,
        method: Method,
        body: &[u8],
        host: &dyn ApiHost,
        survey: Option<&Survey>,
        now: (Instant, u64),
    ) -> Answer {
        match method {
            Method::Publish => {
                let r: PublishRequest<'_> = decode(body)?;
                let data = payload(r.data, &r.b64data, &r.tags)?;
                let key = r.idempotency_key.as_deref();
                self.publish(&r.channel, data, r.skip_history, key, host, now.0)
                    .map(|p| publish_result(&p))
            }
            Method::Broadcast => self.broadcast(body, host, now.0),
            Method::Subscribe => {
                let r: SubscribeRequest = decode(body)?;
                required("user", &r.user)?;
                self.cfg.channels.resolve(&r.channel)?;
                let to = sessions(r.user, r.client, Vec::new());
                send(host, SessionCommand::Subscribe(to, r.channel))
            }
            Method::Unsubscribe => {
                let r: UnsubscribeRequest = decode(body)?;
                required("user", &r.user)?;
                required("channel", &r.channel)?;
                let to = sessions(r.user, r.client, Vec::new());
                send(host, SessionCommand::Unsubscribe(to, r.channel))
            }
            Method::Disconnect => {
                let r: DisconnectRequest = decode(body)?;
                required("user", &r.user)?;
                let d = match r.disconnect {
                    None => Disconnect::FORCE_NO_RECONNECT,
                    Some(d) => custom_disconnect(d)?,
                };
                info!(target: AUDIT, user = %r.user, client = ?r.client, code = d.code, "API disconnect");
                let to = sessions(r.user, r.client, r.whitelist);
                send(host, SessionCommand::Disconnect(to, d))
            }
            Method::Refresh => {
                let r: RefreshRequest = decode(body)?;
                required("user", &r.user)?;
                let to = sessions(r.user, r.client, Vec::new());
                let cmd = SessionCommand::Refresh {
                    to,
                    expired: r.expired,
                    expire_at: r.expire_at,
                };
                send(host, cmd)
            }
            Method::Presence | Method::PresenceStats => {
                let r: ChannelRequest<'_> = decode(body)?;
                let ch = self.cfg.channels.resolve(&r.channel)?;
                if !ch.opts.presence {
                    return Err(ClientError::NOT_AVAILABLE
                        .with_detail("presence is off for this channel's namespace"));
                }
                if method == Method::PresenceStats {
                    let (clients, users) = host.engine().presence_stats(&r.channel);
                    Ok(json(
                        &serde_json::json!({"num_clients": clients, "num_users": users}),
                    ))
                } else {
                    Ok(presence_body(&host.engine().presence(&r.channel)))
                }
            }
            Method::History => self.history(body, host, now.0),
            Method::HistoryRemove => {
                let r: ChannelRequest<'_> = decode(body)?;
                self.cfg.channels.resolve(&r.channel)?;
                host.engine().remove_history(&r.channel);
                Ok(b"{}".to_vec())
            }
            Method::Channels => {
                let r: ChannelsRequest = decode(body)?;
                let survey = survey.ok_or_else(|| no_survey(method))?;
                let mut all = survey.channels.clone();
                for (c, n) in &survey.elsewhere {
                    *all.entry(c.clone()).or_default() += n;
                }
                let channels: serde_json::Map<String, serde_json::Value> = all
                    .iter()
                    .filter(|(c, _)| r.pattern.is_empty() || glob(&r.pattern, c))
                    .map(|(c, n)| (c.clone(), serde_json::json!({"num_clients": n})))
                    .collect();
                Ok(json(&serde_json::json!({ "channels": channels })))
            }
            Method::Info => {
                decode::<serde::de::IgnoredAny>(body)?;
                let survey = survey.ok_or_else(|| no_survey(method))?;
                let mine = self.node.figures(survey);
                let others = host.other_nodes();
                let nodes: Vec<NodeInfo<'_>> = std::iter::once(&mine)
                    .chain(&others)
                    .map(|f| NodeInfo::of(f, now.1))
                    .collect();
                Ok(json(&serde_json::json!({ "nodes": nodes })))
            }
            Method::Rpc => super::rpc::call(&self.cfg, body, host, now),
            Method::Batch => Err(ClientError::BAD_REQUEST.with_detail("a batch inside a batch")),
        }
    }

    fn publish(
        &mut self,
        channel: &str,
        data: &RawValue,
        skip_history: bool,
        key: Option<&str>,
        host: &dyn ApiHost,
        now: Instant,
    ) -> Result<Option<StreamPosition>, ClientError> {
        let ch = self.cfg.channels.resolve(channel)?;
        let key = key.filter(|k| !k.is_empty());
        if let Some(k) = key
            && let Some(done) = self.idempotency.get(channel, k, now)
        {
            return Ok(done);
        }
        let history = if skip_history {
            HistoryOptions::default()
        } else {
            history_options(ch.opts)
        };
        let info: Option<&ClientInfo<'_>> = None;
        let p = host
            .engine()
            .publish(channel, data, info, history, now)
            .map_err(ClientError::from)?;
        if let Some(k) = key {
            self.idempotency.put(channel, k, p.clone(), now);
        }
        Ok(p)
    }

    fn broadcast(&mut self, body: &[u8], host: &dyn ApiHost, now: Instant) -> Answer {
        let r: BroadcastRequest<'_> = decode(body)?;
        if r.channels.is_empty() {
            return Err(ClientError::BAD_REQUEST.with_detail("channels required"));
        }
        let data = payload(r.data, &r.b64data, &r.tags)?;
        let mut out = b"{\"responses\":[".to_vec();
        for (i, channel) in r.channels.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let key = r.idempotency_key.as_deref();
            match self.publish(channel, data, r.skip_history, key, host, now) {
                Ok(p) => {
                    out.extend_from_slice(b"{\"result\":");
                    out.extend_from_slice(&publish_result(&p));
                    out.push(b'}');
                }
                Err(e) => out.extend_from_slice(&error_body(&e)),
            }
        }
        out.extend_from_slice(b"]}");
        Ok(out)
    }

    fn history(&mut self, body: &[u8], host: &dyn ApiHost, now: Instant) -> Answer {
        let r: HistoryRequest<'_> = decode(body)?;
        let ch = self.cfg.channels.resolve(&r.channel)?;
        let opts = history_options(ch.opts);
        if !opts.enabled() {
            return Err(ClientError::NOT_AVAILABLE
                .with_detail("history is off for this channel's namespace"));
        }
        // Centrifugo: limit 0 = the position only, -1 = everything kept.
        let limit = match r.limit.unwrap_or(0) {
            l if l < 0 => opts.size,
            l => (l as usize).min(opts.size),
        };
        let query = HistoryQuery {
            since: r.since.as_ref().map(|s| s.offset),
            limit,
            reverse: r.reverse,
        };
        let (items, top) = host
            .engine()
            .history(&r.channel, query, opts, now)
            .map_err(ClientError::from)?;
        if let Some(since) = &r.since
            && since.epoch != *top.epoch
        {
            return Err(
                ClientError::UNRECOVERABLE_POSITION.with_detail(format_args!(
                    "epoch {:?} is not the channel's ({})",
                    since.epoch, top.epoch
                )),
            );
        }
        let publications: Vec<Bytes> = items.into_iter().map(|i| i.publication).collect();
        let raw = raw_publications(&publications);
        #[derive(Serialize)]
        struct HistoryResult<'a> {
            publications: &'a [&'a RawValue],
            offset: u64,
            epoch: &'a str,
        }
        Ok(json(&HistoryResult {
            publications: &raw,
            offset: top.offset,
            epoch: &top.epoch,
        }))
    }
}

fn no_survey(m: Method) -> ClientError {
    ClientError::INTERNAL.with_detail(format_args!("{} needs a survey of the workers", m.name()))
}

fn sessions(user: String, client: Option<String>, except: Vec<String>) -> Sessions {
    Sessions {
        user,
        client: client.filter(|c| !c.is_empty()),
        except,
    }
}

fn send(host: &dyn ApiHost, cmd: SessionCommand) -> Answer {
    if host.to_sessions(cmd) {
        Ok(b"{}".to_vec())
    } else {
        Err(ClientError::INTERNAL.with_detail(
            "a worker's command queue is full, or the other nodes could not be told (engine \
             unavailable); retry (the command may have reached some connections)",
        ))
    }
}

/// The publication's data: JSON only (binary needs the protobuf protocol ringcast does not
/// speak), tags not yet.
fn payload<'a>(
    data: Option<&'a RawValue>,
    b64data: &Option<String>,
    tags: &std::collections::HashMap<String, String>,
) -> Result<&'a RawValue, ClientError> {
    if !tags.is_empty() {
        return Err(ClientError::BAD_REQUEST.with_detail("publication tags are not supported"));
    }
    match data {
        Some(d) if d.get() != "null" => Ok(d),
        _ if b64data.is_some() => Err(ClientError::BAD_REQUEST.with_detail(
            "b64data (binary) is not supported: clients speak the JSON protocol; send data",
        )),
        _ => Err(ClientError::BAD_REQUEST.with_detail("data required")),
    }
}

fn custom_disconnect(d: DisconnectObject) -> Result<Disconnect, ClientError> {
    if !(3000..=4999).contains(&d.code) {
        return Err(ClientError::BAD_REQUEST
            .with_detail(format_args!("disconnect code {} outside 3000-4999", d.code)));
    }
    if d.reason.len() > MAX_REASON_LEN {
        return Err(ClientError::BAD_REQUEST.with_detail(format_args!(
            "disconnect reason longer than {MAX_REASON_LEN} bytes"
        )));
    }
    Ok(Disconnect {
        code: d.code as u16,
        reason: Cow::Owned(d.reason),
    })
}

fn presence_body(entries: &[crate::engine::PresenceEntry]) -> Vec<u8> {
    let raw: Vec<Option<&RawValue>> = entries
        .iter()
        .map(|e| {
            e.conn_info
                .as_deref()
                .and_then(|c| serde_json::from_str::<&RawValue>(c).ok())
        })
        .collect();
    let presence: std::collections::BTreeMap<&str, ClientInfo<'_>> = entries
        .iter()
        .zip(&raw)
        .map(|(e, info)| {
            (
                &*e.client,
                ClientInfo {
                    user: &e.user,
                    client: &e.client,
                    conn_info: *info,
                    chan_info: None,
                },
            )
        })
        .collect();
    #[derive(Serialize)]
    struct PresenceResult<'a> {
        presence: std::collections::BTreeMap<&'a str, ClientInfo<'a>>,
    }
    json(&PresenceResult { presence })
}

#[cfg(test)]
mod tests;
