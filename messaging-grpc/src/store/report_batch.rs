//! Provider status reports (delivery callbacks, the console provider's receipts) as a
//! set: a batch's reported changes take one `UPDATE … FROM (VALUES …)` per status and
//! one insert of their events, where each written alone took a savepoint and four
//! statements (the change, the user's counter, the event, the notice) — under a send
//! load with the dispatcher on, every send's DELIVERED report was such a closure, each
//! statement a hop to SQLite's connection thread or a round trip to PostgreSQL.
//!
//! Answers stay exact per write: the change is conditional per message
//! (`status = expected`, `RETURNING`), so a message that changed meanwhile answers
//! `None` alone and its caller reads it again. A message reported twice in one batch
//! changes at most once, by the first report; the later ones answer `None` (changed)
//! and are decided again on a fresh read (one by one, a later report that expected
//! the current status would have applied in the same batch; here it applies in the
//! next).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, Value};

use super::{
    now,
    status_batch::{ROWS, Sql, status_events},
};

/// A provider's report moving a message `expected` → `status`, with what it said.
/// `None` fields are left as stored (as [`super::messages::StatusChange`]'s are).
#[derive(Clone, Debug)]
pub struct ReportedStatus {
    pub user_id: String,
    pub message_id: String,
    pub expected: String,
    pub status: String,
    pub error_code: Option<i32>,
    pub error_message: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// `events.kind` of the status change's event.
    pub event_kind: &'static str,
}

/// Applies a batch's reports; each one's event cursor (`None`: the message had
/// changed, or an earlier report of the batch changed it), in the order of `writes`.
pub async fn apply(
    db: &impl ConnectionTrait,
    writes: &[ReportedStatus],
) -> Result<Vec<Option<i64>>, DbErr> {
    let mut out = vec![None; writes.len()];
    // The first report of each message; the rest of it are "changed".
    let mut seen = HashSet::with_capacity(writes.len());
    let mut groups: HashMap<(&str, &str, &'static str), Vec<usize>> = HashMap::new();
    for (i, w) in writes.iter().enumerate() {
        if seen.insert(w.message_id.as_str()) {
            groups
                .entry((w.status.as_str(), w.expected.as_str(), w.event_kind))
                .or_default()
                .push(i);
        }
    }
    // In key order: two replicas' sets over the same messages (a callback delivered to
    // both) lock the rows in one order, so they cannot deadlock over them.
    for members in groups.values_mut() {
        members.sort_by(|&a, &b| {
            let (a, b) = (&writes[a], &writes[b]);
            (&a.user_id, &a.message_id).cmp(&(&b.user_id, &b.message_id))
        });
    }
    let backend = db.get_database_backend();
    let at = now();
    for ((status, expected, kind), members) in groups {
        let mut changed = Vec::new();
        for part in members.chunks(ROWS / 8) {
            let mut sql = Sql::new(backend);
            let (status_, expected_, at_) = (sql.bind(status), sql.bind(expected), sql.bind(at));
            let rows: Vec<String> = part
                .iter()
                .map(|&i| {
                    let w = &writes[i];
                    let values: [Value; 6] = [
                        w.message_id.as_str().into(),
                        w.user_id.as_str().into(),
                        w.error_code.into(),
                        w.error_message.clone().into(),
                        w.sent_at.into(),
                        w.delivered_at.into(),
                    ];
                    let bound: Vec<String> = values.into_iter().map(|v| sql.bind(v)).collect();
                    format!("({})", bound.join(", "))
                })
                .collect();
            // VALUES columns are column1… on both databases; SQLite's RETURNING may
            // name only the updated table's columns.
            let text = format!(
                "UPDATE messages SET status = {status_}, updated_at = {at_}, \
                 error_code = COALESCE(v.column3, messages.error_code), \
                 error_message = COALESCE(v.column4, messages.error_message), \
                 sent_at = COALESCE(v.column5, messages.sent_at), \
                 delivered_at = COALESCE(v.column6, messages.delivered_at) \
                 FROM (VALUES {}) AS v \
                 WHERE messages.id = v.column1 AND messages.user_id = v.column2 \
                 AND messages.status = {expected_} \
                 RETURNING id, user_id, contact_id",
                rows.join(", ")
            );
            changed.extend(sql.rows(db, text).await?);
        }
        let by_id: HashMap<&str, usize> = members
            .iter()
            .map(|&i| (writes[i].message_id.as_str(), i))
            .collect();
        let cursors = status_events(db, &changed, status, kind).await?;
        for (row, cursor) in changed.iter().zip(cursors) {
            if let Some(&i) = by_id.get(row.id.as_str())
                && writes[i].user_id == row.user_id
            {
                out[i] = Some(cursor);
            }
        }
    }
    Ok(out)
}
