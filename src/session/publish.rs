//! `publish`, `rpc`, `send`, and the commands that need the channel engine.

use tracing::{debug, info};

use super::connect::AUDIT;
use super::rpc::RpcContext;
use super::{ClientSession, Host, Now};
use crate::client_protocol::codes::ClientError;
use crate::client_protocol::command::{PublishRequest, RpcRequest, SendRequest};
use crate::client_protocol::reply::RpcResult;

impl ClientSession {
    pub(super) fn on_publish(
        &mut self,
        id: u32,
        r: &PublishRequest<'_>,
        now: Now,
        host: &mut dyn Host,
    ) {
        let Some(data) = r.data else {
            return self.out.error(
                id,
                &ClientError::BAD_REQUEST.with_detail("publish needs data"),
            );
        };
        let env = self.env.clone();
        let channel = r.channel.as_ref();
        let resolved = match env.cfg.channels.resolve(channel) {
            Ok(c) => c,
            Err(e) => return self.out.error(id, &e),
        };
        let subscribed = self.subs.contains_key(channel);
        let room = env.cfg.chat.room_of(&resolved);
        // In a chat room the role decides first, so a guest hears which permission it lacks.
        let role_check = room.map_or(Ok(()), |ns| {
            env.cfg.chat.permissions.check(
                ns,
                self.role,
                crate::chat::permissions::Permission::Publish,
            )
        });
        if let Err(e) = role_check.and_then(|()| {
            env.cfg
                .channels
                .may_publish(&resolved, &self.user, subscribed)
        }) {
            info!(target: AUDIT, client = %self.client_id, user = %self.user, channel, "publish denied: {}", e.message);
            return self.out.error(id, &e);
        }
        if let Some(ns) = room {
            return match self.chat_publish(channel, ns, &resolved, data, now, host) {
                Ok(()) => self.reply_empty(id, "publish"),
                Err(e) => {
                    info!(target: AUDIT, client = %self.client_id, user = %self.user, channel, "chat publish refused: {}", e.message);
                    self.out.error(id, &e)
                }
            };
        }
        let history = super::channel::history_options(resolved.opts);
        match host.publish(channel, data, self.publisher().as_ref(), history, now.at) {
            Ok(_) => self.reply_empty(id, "publish"),
            Err(e) => self.out.error(id, &e),
        }
    }

    pub(super) fn on_rpc(&mut self, id: u32, r: &RpcRequest<'_>, now: Now, host: &mut dyn Host) {
        let result = match self.chat_rpc(&r.method, r.data, now, host) {
            Some(result) => result,
            None => {
                let env = self.env.clone();
                match env.rpc.get(&r.method) {
                    Some(handler) => handler(
                        &RpcContext {
                            user: &self.user,
                            client: &self.client_id,
                            role: self.role,
                        },
                        r.data,
                    ),
                    None => Err(ClientError::METHOD_NOT_FOUND
                        .with_detail(format_args!("no rpc method {:?}", r.method))),
                }
            }
        };
        match result {
            Ok(data) => self.out.reply(
                id,
                "rpc",
                &RpcResult {
                    data: data.as_deref(),
                },
            ),
            Err(e) => self.out.error(id, &e),
        }
    }

    /// `send`: asynchronous, no reply. No handler is registered for it yet: logged, dropped.
    pub(super) fn on_send(&mut self, r: &SendRequest<'_>) {
        debug!(client = %self.client_id, bytes = r.data.map_or(0, |d| d.get().len()), "send: no handler, ignored");
    }
}
