//! The API's view of the server: the shared engine, and the workers' control queues.

use std::time::Duration;

use tracing::warn;

use std::sync::Arc;

use crate::api::{ApiHost, Node, SessionCommand, Survey};
use crate::cluster::{NODE_INFO_INTERVAL, NODES_SURVEY_WAIT, NodeFigures, Notice};
use crate::engine::Engine;
use crate::server::ServerShared;
use crate::server::inbox::Control;
use crate::server::nodes::{ChannelCounts, MAX_ASKS};

/// How long a survey waits for a worker's answer (a worker answers in its next loop turn).
const SURVEY_WAIT: Duration = Duration::from_secs(2);

pub struct ControlHost<'a>(pub &'a ServerShared);

impl ApiHost for ControlHost<'_> {
    fn engine(&self) -> &dyn Engine {
        &*self.0.engine
    }

    fn to_sessions(&self, cmd: SessionCommand) -> bool {
        self.0.to_sessions(cmd)
    }

    fn chat(&self) -> Option<&crate::chat::Chat> {
        Some(&self.0.session_env.chat)
    }

    fn other_nodes(&self) -> Vec<NodeFigures> {
        self.0.cluster.others()
    }
}

/// Asks the other nodes for their channels and sums the answers (those that do not answer
/// within [`NODES_SURVEY_WAIT`] are left out, logged).
pub async fn survey_nodes(shared: &ServerShared) -> ChannelCounts {
    let mut all = ChannelCounts::new();
    let expected = shared.cluster.others().len();
    if expected == 0 {
        return all;
    }
    let id = {
        let mut r = [0u8; 8];
        let _ = getrandom::fill(&mut r);
        u64::from_le_bytes(r)
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let waiting = || {
        shared
            .cluster
            .waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    };
    waiting().insert(id, tx);
    let mut answered = 0;
    if shared.tell_nodes(&Notice::ChannelsAsk { id }) {
        let deadline = tokio::time::Instant::now() + NODES_SURVEY_WAIT;
        while answered < expected {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(channels)) => {
                    answered += 1;
                    for (c, n) in channels {
                        *all.entry(c).or_default() += n;
                    }
                }
                _ => break,
            }
        }
    }
    waiting().remove(&id);
    if answered < expected {
        warn!(
            "channels: {answered} of {expected} other nodes answered within {NODES_SURVEY_WAIT:?}; the rest left out"
        );
    }
    all
}

/// Answers the other nodes' asks for this node's channels, for as long as the control plane
/// runs.
pub async fn answer_asks(shared: Arc<ServerShared>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(MAX_ASKS);
    if shared.cluster.asks.set(tx).is_err() {
        return;
    }
    while let Some((id, to)) = rx.recv().await {
        let channels = survey(&shared).await.channels;
        shared.tell_nodes(&Notice::ChannelsTell { id, to, channels });
    }
}

/// This node's figures for the other nodes' `info`, every [`NODE_INFO_INTERVAL`], for as long
/// as the control plane runs.
pub async fn tell_figures(shared: Arc<ServerShared>, node: Node) {
    let mut every = tokio::time::interval(NODE_INFO_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let figures = node.figures(&survey(&shared).await);
        shared.tell_nodes(&Notice::Node(figures));
    }
}

/// Asks every worker for its channels and counts, and sums the answers (a worker that does
/// not answer in time is left out, with a log line); users are counted server-wide.
pub async fn survey(shared: &ServerShared) -> Survey {
    let mut waiting = Vec::with_capacity(shared.inboxes.len());
    for (w, inbox) in shared.inboxes.iter().enumerate() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if inbox.send_control(Control::Survey(tx)) {
            waiting.push((w, rx));
        } else {
            warn!(
                worker = w,
                "control queue full: worker left out of the survey"
            );
        }
    }
    let mut survey = Survey {
        users: shared.users.len() as u64,
        ..Survey::default()
    };
    for (w, rx) in waiting {
        match tokio::time::timeout(SURVEY_WAIT, rx).await {
            Ok(Ok(s)) => survey.merge(s),
            _ => warn!(
                worker = w,
                "worker did not answer the survey within {SURVEY_WAIT:?}"
            ),
        }
    }
    survey
}
