//! The API's view of the server: the shared engine, and the workers' control queues.

use std::time::Duration;

use tracing::warn;

use std::sync::Arc;

use crate::api::{ApiHost, Node, SessionCommand, Survey};
use crate::cluster::{NODE_INFO_INTERVAL, NodeFigures, Notice};
use crate::engine::Engine;
use crate::server::ServerShared;
use crate::server::inbox::Control;

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
