//! What ringcast nodes sharing an engine (Redis) tell each other through its control channel:
//! commands for a user's sessions (the user may be connected to any node), chat state changes
//! (a ban made through one node holds at all), each node's figures for the API's `info` (and
//! that it stops), and the API's `channels` asked of every node.
//!
//! Sans-io: the messages, their encoding, and the registry of the other nodes with time as an
//! argument. The server sends and applies them (`crate::server::nodes`); the engine carries the
//! bytes. Must not: do I/O, or apply anything itself.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::api::SessionCommand;
use crate::chat::replica::ChatChange;

/// How often a node publishes its figures.
pub const NODE_INFO_INTERVAL: Duration = Duration::from_secs(3);
/// A node not heard from for this long is left out of `info` (three figures missed).
pub const NODE_EXPIRY: Duration = Duration::from_secs(10);
/// Other nodes remembered at most (a further one is not listed until one expires; logged).
pub const MAX_NODES: usize = 1024;
/// Longest message accepted from the control channel (a node's channel list included).
pub const MAX_MESSAGE: usize = 4 << 20;
/// How long a node asking the others for their channels waits for the answers.
pub const NODES_SURVEY_WAIT: Duration = Duration::from_millis(2500);

/// One message from a node to every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    /// For the sessions of a user, on whichever node they are connected.
    Session(SessionCommand),
    Chat(ChatChange),
    Node(NodeFigures),
    /// The sending node stops: forget it now rather than after [`NODE_EXPIRY`].
    NodeGone,
    /// The API's `channels` on node `from`: every node answers with its channels.
    ChannelsAsk {
        id: u64,
    },
    /// A node's channels (with subscribed connections) for the node `to` that asked.
    ChannelsTell {
        id: u64,
        to: String,
        channels: BTreeMap<String, u32>,
    },
}

impl Notice {
    /// For logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::Session(_) => "session",
            Notice::Chat(_) => "chat",
            Notice::Node(_) | Notice::NodeGone => "node",
            Notice::ChannelsAsk { .. } | Notice::ChannelsTell { .. } => "channels",
        }
    }
}

/// A node's figures, as `info` lists them (`uptime` computed when answering).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFigures {
    pub uid: String,
    pub name: String,
    pub version: String,
    /// Unix seconds the node started.
    pub started: u64,
    pub num_clients: u64,
    pub num_users: u64,
    pub num_channels: u64,
    pub num_subs: u64,
}

#[derive(Serialize, Deserialize)]
struct Envelope<F, N> {
    /// The sending node's uid (every node receives its own messages back, and skips them).
    from: F,
    notice: N,
}

/// Why a control message was dropped.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("control message of {0} bytes, over the {MAX_MESSAGE}-byte bound")]
    TooLong(usize),
    #[error("control message not understood (another ringcast version, or not ringcast?): {0}")]
    Json(#[from] serde_json::Error),
}

pub fn encode(from: &str, notice: &Notice) -> Vec<u8> {
    serde_json::to_vec(&Envelope { from, notice }).expect("serialising to a Vec cannot fail")
}

/// (sending node's uid, notice).
pub fn decode(msg: &[u8]) -> Result<(String, Notice), ClusterError> {
    if msg.len() > MAX_MESSAGE {
        return Err(ClusterError::TooLong(msg.len()));
    }
    let e: Envelope<String, Notice> = serde_json::from_slice(msg)?;
    Ok((e.from, e.notice))
}

/// The other nodes heard from, with when.
#[derive(Debug, Default)]
pub struct Nodes {
    seen: HashMap<String, (Instant, NodeFigures)>,
    /// Figures not kept because [`MAX_NODES`] nodes were live (a metric).
    pub refused: u64,
}

impl Nodes {
    /// Notes a node's figures at `now`.
    pub fn saw(&mut self, figures: NodeFigures, now: Instant) {
        if !self.seen.contains_key(&figures.uid) && self.seen.len() >= MAX_NODES {
            self.sweep(now);
            if self.seen.len() >= MAX_NODES {
                self.refused += 1;
                tracing::warn!(node = %figures.uid, "{MAX_NODES} other nodes known: this one not listed");
                return;
            }
        }
        self.seen.insert(figures.uid.clone(), (now, figures));
    }

    /// A node said it stops.
    pub fn forget(&mut self, uid: &str) {
        self.seen.remove(uid);
    }

    fn sweep(&mut self, now: Instant) {
        self.seen
            .retain(|_, (at, _)| now.saturating_duration_since(*at) < NODE_EXPIRY);
    }

    /// The nodes heard from within [`NODE_EXPIRY`] of `now`, by uid.
    pub fn live(&mut self, now: Instant) -> Vec<NodeFigures> {
        self.sweep(now);
        let mut v: Vec<NodeFigures> = self.seen.values().map(|(_, f)| f.clone()).collect();
        v.sort_by(|a, b| a.uid.cmp(&b.uid));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Sessions;
    use crate::client_protocol::Disconnect;

    fn figures(uid: &str) -> NodeFigures {
        NodeFigures {
            uid: uid.into(),
            name: "host".into(),
            version: "1".into(),
            started: 5,
            num_clients: 3,
            num_users: 2,
            num_channels: 1,
            num_subs: 4,
        }
    }

    #[test]
    fn every_notice_survives_encoding() {
        let to = Sessions {
            user: "alice".into(),
            client: Some("c1".into()),
            except: vec!["c2".into()],
        };
        let notices = [
            Notice::Session(SessionCommand::Disconnect(
                to.clone(),
                Disconnect::BANNED.with_detail("with no end"),
            )),
            Notice::Session(SessionCommand::Unsubscribe(to.clone(), "news".into())),
            Notice::Session(SessionCommand::Subscribe(to.clone(), "news".into())),
            Notice::Session(SessionCommand::Refresh {
                to: to.clone(),
                expired: false,
                expire_at: Some(99),
            }),
            Notice::Session(SessionCommand::Status(to, crate::chat::Status::Busy)),
            Notice::Chat(ChatChange::Status {
                user: "alice".into(),
                status: crate::chat::Status::Away,
            }),
            Notice::Node(figures("n1")),
            Notice::NodeGone,
            Notice::ChannelsAsk { id: 7 },
            Notice::ChannelsTell {
                id: 7,
                to: "node-b".into(),
                channels: [("news".to_owned(), 3)].into(),
            },
        ];
        for n in notices {
            let (from, back) = decode(&encode("node-a", &n)).expect("decodes");
            assert_eq!(from, "node-a");
            assert_eq!(back, n);
        }
    }

    #[test]
    fn foreign_or_oversized_messages_are_errors() {
        assert!(matches!(decode(b"hello"), Err(ClusterError::Json(_))));
        assert!(matches!(
            decode(br#"{"from":"x","notice":{"launch":1}}"#),
            Err(ClusterError::Json(_))
        ));
        let big = vec![b' '; MAX_MESSAGE + 1];
        assert!(matches!(decode(&big), Err(ClusterError::TooLong(_))));
    }

    #[test]
    fn nodes_expire_and_are_bounded() {
        let t = Instant::now();
        let mut nodes = Nodes::default();
        nodes.saw(figures("b"), t);
        nodes.saw(figures("a"), t + Duration::from_secs(5));
        let uids = |v: Vec<NodeFigures>| v.into_iter().map(|f| f.uid).collect::<Vec<_>>();
        assert_eq!(uids(nodes.live(t + Duration::from_secs(6))), ["a", "b"]);
        assert_eq!(uids(nodes.live(t + NODE_EXPIRY)), ["a"]);
        nodes.forget("a");
        assert!(nodes.live(t + NODE_EXPIRY).is_empty());
        nodes.saw(figures("a"), t + Duration::from_secs(5));
        for i in 0..MAX_NODES + 1 {
            nodes.saw(figures(&format!("n{i}")), t + NODE_EXPIRY);
        }
        assert_eq!(
            nodes.refused, 2,
            "a + n0..n1022 fill it; n1023 and n1024 refused"
        );
        assert_eq!(nodes.live(t + NODE_EXPIRY).len(), MAX_NODES);
    }
}
