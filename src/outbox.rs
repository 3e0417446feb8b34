//! The PostgreSQL outbox, sans-io: the table's shape, the statements the consumer runs, and
//! how a row becomes an API call. The consumer (`control::outbox`) does the I/O.
//!
//! A backend inserts `(method, payload)` rows in the transaction that changed its data; the
//! consumer applies them in id order and marks them `processed_at`. Exactly once, as far as a
//! crash allows: rows are taken `FOR UPDATE SKIP LOCKED` inside a transaction that also holds
//! an advisory lock per table, so one node applies at a time, in order, and a second node is a
//! hot standby; publishes carry the idempotency key `outbox:<table>:<id>`, so a batch applied
//! but not marked (the database went away before COMMIT) is not published twice when retried
//! by the same process. A process killed between applying and COMMIT re-applies on restart
//! (at least once).

/// Defaults.
pub const DEFAULT_TABLE: &str = "ringcast_outbox";
pub const DEFAULT_BATCH: u32 = 100;

/// Why an outbox setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboxError {
    #[error(
        "outbox table name {0:?}: use 1-63 characters of a-z, 0-9 and _, not starting with a digit (optionally schema.table)"
    )]
    BadTable(String),
}

/// A validated table name (`table` or `schema.table`), safe to put into SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table(String);

fn identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.as_bytes()[0].is_ascii_digit()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Table {
    pub fn new(name: &str) -> Result<Self, OutboxError> {
        let ok = match name.split_once('.') {
            Some((schema, table)) => identifier(schema) && identifier(table),
            None => identifier(name),
        };
        if ok {
            Ok(Self(name.to_owned()))
        } else {
            Err(OutboxError::BadTable(name.to_owned()))
        }
    }

    pub fn name(&self) -> &str {
        &self.0
    }

    /// The LISTEN/NOTIFY channel: the table name with `.` as `_`.
    pub fn notify_channel(&self) -> String {
        self.0.replace('.', "_")
    }

    /// The advisory lock key: a stable 64-bit hash of the table name (FNV-1a).
    pub fn lock_key(&self) -> i64 {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in self.0.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        h as i64
    }

    /// `ringcast outbox-init`: the table, a partial index on what is left to do, and a trigger
    /// that wakes consumers (NOTIFY once per inserting statement). Idempotent.
    pub fn init_sql(&self) -> String {
        let t = &self.0;
        let base = self.notify_channel();
        format!(
            "CREATE TABLE IF NOT EXISTS {t} (
    id bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    method text NOT NULL,
    payload jsonb NOT NULL,
    processed_at timestamptz
);
CREATE INDEX IF NOT EXISTS {base}_pending ON {t} (id) WHERE processed_at IS NULL;
CREATE OR REPLACE FUNCTION {base}_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{base}', '');
    RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS {base}_notify ON {t};
CREATE TRIGGER {base}_notify AFTER INSERT ON {t}
    FOR EACH STATEMENT EXECUTE FUNCTION {base}_notify();
"
        )
    }

    /// Rows to apply: `$1` = batch size. Run after taking the advisory lock.
    pub fn select_sql(&self) -> String {
        format!(
            "SELECT id, method, payload::text FROM {} WHERE processed_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
            self.0
        )
    }

    /// Marks applied rows: `$1` = their ids.
    pub fn mark_sql(&self) -> String {
        format!(
            "UPDATE {} SET processed_at = now() WHERE id = ANY($1)",
            self.0
        )
    }

    /// Seconds since the oldest unapplied row was inserted (0 when none).
    pub fn lag_sql(&self) -> String {
        format!(
            "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 FROM {} WHERE processed_at IS NULL",
            self.0
        )
    }
}

/// The API body of a row: publishes and broadcasts get the idempotency key
/// `outbox:<table>:<id>` unless the row set its own. Other methods are applied as written.
pub fn api_body(table: &Table, id: i64, method: &str, payload: &str) -> Result<Vec<u8>, String> {
    if !matches!(method, "publish" | "broadcast") {
        return Ok(payload.as_bytes().to_vec());
    }
    let mut v: serde_json::Value =
        serde_json::from_str(payload).map_err(|e| format!("payload is not JSON: {e}"))?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| "payload is not a JSON object".to_owned())?;
    obj.entry("idempotency_key")
        .or_insert_with(|| format!("outbox:{}:{id}", table.name()).into());
    Ok(serde_json::to_vec(&v).expect("serialising a Value cannot fail"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_identifiers() {
        for ok in ["ringcast_outbox", "app.outbox_2", "_x"] {
            assert!(Table::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Outbox",
            "out-box",
            "x; DROP TABLE users",
            "a.b.c",
            "9lives",
            "\"quoted\"",
            &"x".repeat(64),
        ] {
            assert!(Table::new(bad).is_err(), "{bad}");
        }
        let t = Table::new("app.events").unwrap();
        assert_eq!(t.notify_channel(), "app_events");
        assert_eq!(t.lock_key(), Table::new("app.events").unwrap().lock_key());
        assert_ne!(t.lock_key(), Table::new("app.other").unwrap().lock_key());
    }

    #[test]
    fn publishes_get_an_idempotency_key_from_the_row() {
        let t = Table::new("ringcast_outbox").unwrap();
        let b = api_body(&t, 42, "publish", r#"{"channel":"a","data":{"x":1}}"#).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["idempotency_key"], "outbox:ringcast_outbox:42");
        assert_eq!(v["data"]["x"], 1);
        let own = api_body(&t, 42, "broadcast", r#"{"idempotency_key":"mine"}"#).unwrap();
        assert!(String::from_utf8(own).unwrap().contains("\"mine\""));
        let d = api_body(&t, 1, "disconnect", r#"{"user":"u"}"#).unwrap();
        assert_eq!(d, br#"{"user":"u"}"#);
        assert!(api_body(&t, 1, "publish", "[1]").is_err());
    }
}
