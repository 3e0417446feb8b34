//! The server API's `rpc` (`{"method": M, "params": {…}}` → `{"data": …}`): chat moderation
//! for backends — `mod.warn|mute|unmute|kick|ban|unban` and `mod.history` with the data the
//! client rpc takes, acting as the admin `"api"`. Other methods: 104.

use std::time::Instant;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{ApiHost, SessionCommand};
use crate::auth::Role;
use crate::chat::moderate::{self, Effects, ModHistory, Moderate};
use crate::chat::moderation::Actor;
use crate::client_protocol::codes::ClientError;
use crate::config::AppConfig;

/// Who the API acts as in moderation records.
pub const API_ACTOR: &str = "api";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RpcRequest<'a> {
    method: String,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

/// Moderation's effects from the control plane: commands to every worker, notifications
/// published straight into the engine.
struct ApiEffects<'a> {
    cfg: &'a AppConfig,
    host: &'a dyn ApiHost,
    now: Instant,
}

impl Effects for ApiEffects<'_> {
    fn to_sessions(&mut self, cmd: SessionCommand) -> bool {
        self.host.to_sessions(cmd)
    }

    fn notify(&mut self, user: &str, data: &serde_json::Value) {
        let (channel, history) = crate::chat::personal_target(self.cfg, user);
        let Ok(raw) = RawValue::from_string(data.to_string()) else {
            return;
        };
        if let Err(e) = self
            .host
            .engine()
            .publish(&channel, &raw, None, history, self.now)
        {
            tracing::warn!(%user, channel, "chat notification not published: {e}");
        }
    }
}

fn params<'a, T: Deserialize<'a>>(method: &str, p: Option<&'a RawValue>) -> Result<T, ClientError> {
    serde_json::from_str(p.map_or("null", |p| p.get())).map_err(|e| {
        ClientError::BAD_REQUEST.with_detail(format_args!("{method}: bad params: {e}"))
    })
}

/// `POST /api/rpc`.
pub fn call(
    cfg: &AppConfig,
    body: &[u8],
    host: &dyn ApiHost,
    now: (Instant, u64),
) -> Result<Vec<u8>, ClientError> {
    let r: RpcRequest<'_> =
        serde_json::from_slice(body).map_err(|e| ClientError::BAD_REQUEST.with_detail(e))?;
    let Some(chat) = host.chat() else {
        return Err(ClientError::NOT_AVAILABLE.with_detail("chat is not available here"));
    };
    let data = if r.method == "mod.history" {
        let p: ModHistory = params(&r.method, r.params)?;
        moderate::history(cfg, chat, Role::Admin, &p.user)?
    } else if let Some(action) = moderate::action_of(&r.method) {
        let p: Moderate = params(&r.method, r.params)?;
        let actor = Actor {
            user: API_ACTOR,
            role: Role::Admin,
        };
        let mut fx = ApiEffects {
            cfg,
            host,
            now: now.0,
        };
        moderate::execute(cfg, chat, actor, action, p, now.1 * 1000, &mut fx)?
    } else {
        return Err(ClientError::METHOD_NOT_FOUND.with_detail(format_args!(
            "no rpc method {:?} in the server API (mod.warn, mod.mute, mod.unmute, mod.kick, \
             mod.ban, mod.unban, mod.history)",
            r.method
        )));
    };
    Ok(serde_json::to_vec(&serde_json::json!({ "data": data }))
        .expect("serialising to a Vec cannot fail"))
}
