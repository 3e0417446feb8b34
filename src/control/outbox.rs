//! The outbox consumer: on the control plane's thread, applies rows of the PostgreSQL outbox
//! through the server API (see [`crate::outbox`] for the guarantees), woken by NOTIFY, polling
//! as the fallback, reconnecting with backoff when the database goes away.

use std::future::poll_fn;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, Client, NoTls};
use tracing::{info, warn};

use super::host::ControlHost;
use super::http::State;
use super::metrics::OutboxFigures;
use crate::api::Method;
use crate::config::OutboxSettings;
use crate::outbox::api_body;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// `ringcast outbox-init`: creates the table, its index and the NOTIFY trigger.
pub async fn init(settings: &OutboxSettings) -> Result<(), tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(&settings.url, NoTls).await?;
    let driver = tokio::spawn(connection);
    client.batch_execute(&settings.table.init_sql()).await?;
    drop(client);
    let _ = driver.await;
    Ok(())
}

fn figures(state: &State) -> std::cell::RefMut<'_, OutboxFigures> {
    std::cell::RefMut::map(state.outbox.borrow_mut(), |o| o.get_or_insert_default())
}

/// Runs until the task is dropped with the control plane.
pub async fn run(state: Rc<State>, settings: OutboxSettings) {
    figures(&state);
    let mut backoff = BACKOFF_MIN;
    loop {
        match tokio_postgres::connect(&settings.url, NoTls).await {
            Ok((mut client, mut connection)) => {
                backoff = BACKOFF_MIN;
                let wake = Rc::new(Notify::new());
                let closed = Rc::new(Notify::new());
                let (w, c) = (wake.clone(), closed.clone());
                tokio::task::spawn_local(async move {
                    loop {
                        match poll_fn(|cx| connection.poll_message(cx)).await {
                            Some(Ok(AsyncMessage::Notification(_))) => w.notify_one(),
                            Some(Ok(_)) => {}
                            Some(Err(e)) => {
                                warn!("outbox: database connection failed: {e}");
                                break;
                            }
                            None => break,
                        }
                    }
                    c.notify_one();
                });
                info!(table = settings.table.name(), "outbox: connected, applying");
                let listen = format!("LISTEN {}", settings.table.notify_channel());
                if let Err(e) = client.batch_execute(&listen).await {
                    warn!(
                        "outbox: LISTEN failed ({e}); polling every {:?}",
                        settings.poll
                    );
                }
                loop {
                    match apply_batch(&state, &mut client, &settings).await {
                        Ok(n) if n as u32 >= settings.batch => continue,
                        Ok(_) => {}
                        Err(e) => {
                            warn!("outbox: {e}; reconnecting");
                            break;
                        }
                    }
                    tokio::select! {
                        _ = wake.notified() => {}
                        _ = tokio::time::sleep(settings.poll) => {}
                        _ = closed.notified() => break,
                    }
                }
            }
            Err(e) => warn!("outbox: cannot connect to PostgreSQL: {e}; retrying in {backoff:?}"),
        }
        figures(&state).reconnects += 1;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One transaction: the advisory lock (else another node is applying: 0), up to a batch of
/// rows in id order, each applied, all marked, COMMIT. Returns the rows applied.
async fn apply_batch(
    state: &State,
    client: &mut Client,
    settings: &OutboxSettings,
) -> Result<usize, tokio_postgres::Error> {
    let table = &settings.table;
    let tx = client.transaction().await?;
    let locked: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&table.lock_key()])
        .await?
        .get(0);
    if !locked {
        tx.rollback().await?;
        return Ok(0);
    }
    let rows = tx
        .query(&table.select_sql(), &[&(settings.batch as i64)])
        .await?;
    let mut ids = Vec::with_capacity(rows.len());
    // Counted once the batch is marked: a batch retried after the database went away before
    // COMMIT is applied again (its publishes deduplicated by their keys), not counted again.
    let (mut applied, mut failed_rows) = (0, 0);
    let host = ControlHost(&state.shared);
    for row in &rows {
        let id: i64 = row.get(0);
        let method: String = row.get(1);
        let payload: String = row.get(2);
        let failed = match api_body(table, id, &method, &payload) {
            Err(why) => Some(why),
            Ok(body) => {
                let now = (Instant::now(), crate::session::Now::system().unix);
                let outcome = state.api.borrow_mut().call(
                    Method::parse(&method),
                    &method,
                    &body,
                    &host,
                    None,
                    now,
                );
                outcome
                    .error
                    .map(|_| String::from_utf8_lossy(&outcome.body).into_owned())
            }
        };
        match failed {
            None => applied += 1,
            Some(why) => {
                failed_rows += 1;
                warn!(
                    id,
                    method, "outbox row failed (marked processed, not retried): {why}"
                );
            }
        }
        ids.push(id);
    }
    if !ids.is_empty() {
        tx.execute(&table.mark_sql(), &[&ids]).await?;
    }
    tx.commit().await?;
    figures(state).applied += applied;
    figures(state).failed += failed_rows;
    let lag: f64 = client.query_one(&table.lag_sql(), &[]).await?.get(0);
    figures(state).lag_seconds = lag;
    Ok(ids.len())
}
