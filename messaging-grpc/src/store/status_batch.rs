//! The dispatcher's two hot writes as sets: the SENDING mark before a create
//! ([`StartCreate`]) and the provider's answer after it ([`HandedOver`]). Written as
//! closures each took ~8 statements and a savepoint of its own (measured: a drain at
//! Twilio's latency spent a third of its CPU switching threads, one hop to SQLite's
//! connection thread per statement); as sets, a batch's marks take ~6 statements in
//! all, and so do its answers, however many there are.
//!
//! Answers stay exact per write: the lease renewal returns the jobs it renewed (a
//! claim another dispatcher took, or a lease that ran out, is
//! [`Started::LeaseLost`] for that job alone), ownership is read for the batch's
//! senders (share-locked on PostgreSQL until the batch commits, so a release in
//! progress is waited for, never read around), and the status change is conditional per message (`status = expected`,
//! `RETURNING id`), so a message that changed meanwhile is [`Started::Changed`] /
//! `None` alone. Each changed message gets its `message_status_changed` event, with
//! consecutive cursors per user from one bump of the user's counter. The writer
//! ([`super::pipeline`]) runs a set inside a savepoint and, if a statement fails,
//! each write alone.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait,
    IntoActiveModel as _, QueryFilter as _, QueryOrder as _, QuerySelect as _, QueryTrait as _,
    Statement, Value,
};

use super::{
    chunks::chunks,
    conversations::muted_at,
    entities::{conversation as conv, event, phone_number},
    events::{bump_counters, notify},
    message_batch::execute,
    now,
};

/// A create at the provider is about to start for a claimed job: its lease renewed
/// for the call and the create's start noted, the sender's ownership checked, and —
/// on a first attempt — the message QUEUED → SENDING.
#[derive(Clone, Debug)]
pub struct StartCreate {
    pub user_id: String,
    pub message_id: String,
    /// The claim's token: only the job's holder renews it.
    pub token: String,
    pub owner_e164: String,
    pub lease: Duration,
    /// A first attempt (QUEUED → SENDING); false: a resend of a message already
    /// SENDING, whose status stays.
    pub from_queued: bool,
    /// `events.kind` of the status change's event.
    pub event_kind: &'static str,
}

/// What a [`StartCreate`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Started {
    /// Lease renewed (and SENDING, with the event's cursor on a first attempt): call.
    Sending(Option<i64>),
    /// The claim is no longer ours: nothing changed.
    LeaseLost,
    /// The sender is no longer the user's (the lease was renewed; nothing else).
    Released,
    /// The message is no longer QUEUED (adopted, canceled): nothing else changed.
    Changed,
}

/// The provider accepted a message: its job removed (whoever holds it: the answer
/// settles it) and the message `expected` → `status` with the SID, if it still is.
#[derive(Clone, Debug)]
pub struct HandedOver {
    pub user_id: String,
    pub message_id: String,
    pub expected: String,
    pub status: String,
    pub provider_sid: String,
    /// Kept as stored when the provider did not say.
    pub segments: Option<i32>,
    pub sent_at: DateTime<Utc>,
    /// `events.kind` of the status change's event.
    pub event_kind: &'static str,
}

/// Rows per statement: far under both databases' limit of bound values.
pub(super) const ROWS: usize = 500;

/// Applies a batch's marks; their outcomes in the order of `writes`.
pub async fn start_creates(
    db: &impl ConnectionTrait,
    writes: &[StartCreate],
) -> Result<Vec<Started>, DbErr> {
    // Owners first: on PostgreSQL their rows stay share-locked until the batch commits,
    // so a release (which deletes the row, then hurries the sender's outbox jobs) waits
    // for these marks or they wait for it and see it — never a mark on an owner the
    // release already removed. Numbers before outbox rows, the release's order; the
    // writer runs this set before any other of its batch (`pipeline::run_batch`), so
    // the wait holds no other row and cannot deadlock.
    let senders: HashSet<&str> = writes.iter().map(|w| w.owner_e164.as_str()).collect();
    let owners = owners_of(db, senders).await?;
    let renewed = renew_leases(db, writes).await?;
    let mut out: Vec<Started> = writes
        .iter()
        .map(|w| {
            if !renewed.contains(&(w.message_id.clone(), w.token.clone())) {
                Started::LeaseLost
            } else if owners.get(w.owner_e164.as_str()) != Some(&w.user_id) {
                Started::Released
            } else if w.from_queued {
                // Until the status change below says otherwise.
                Started::Changed
            } else {
                Started::Sending(None)
            }
        })
        .collect();
    let mut marking: HashMap<&'static str, Vec<usize>> = HashMap::new();
    for i in (0..writes.len()).filter(|&i| out[i] == Started::Changed) {
        marking.entry(writes[i].event_kind).or_default().push(i);
    }
    let at = now();
    for (kind, members) in marking {
        let mut changed = Vec::new();
        for part in members.chunks(ROWS) {
            let mut sql = Sql::new(db.get_database_backend());
            let (status, expected, at_) = (sql.bind("sending"), sql.bind("queued"), sql.bind(at));
            let ids = sql.pairs(
                part.iter()
                    .map(|&i| (writes[i].message_id.as_str(), writes[i].user_id.as_str())),
            );
            let text = format!(
                "UPDATE messages SET status = {status}, updated_at = {at_} \
                 WHERE status = {expected} AND (id, user_id) IN (VALUES {ids}) \
                 RETURNING id, user_id, contact_id"
            );
            changed.extend(sql.rows(db, text).await?);
        }
        let cursors = status_events(db, &changed, "sending", kind).await?;
        let by_id = first_of_each(writes.iter().map(|w| w.message_id.as_str()), &members);
        for (row, cursor) in changed.iter().zip(cursors) {
            if let Some(&i) = by_id.get(row.id.as_str())
                && writes[i].user_id == row.user_id
            {
                out[i] = Started::Sending(Some(cursor));
            }
        }
    }
    Ok(out)
}

/// Renews the leases of the jobs still held under the writes' tokens (stamped with
/// the database's clock on PostgreSQL: `clock_timestamp()`, as `now()` is the
/// batch's start); the `(message id, token)` pairs renewed — a claim's, not merely its
/// message's: a stale claim of a message in the same batch as its current one is not.
async fn renew_leases(
    db: &impl ConnectionTrait,
    writes: &[StartCreate],
) -> Result<HashSet<(String, String)>, DbErr> {
    let backend = db.get_database_backend();
    let mut by_lease: HashMap<Duration, Vec<&StartCreate>> = HashMap::new();
    for w in writes {
        by_lease.entry(w.lease).or_default().push(w);
    }
    let mut renewed = HashSet::with_capacity(writes.len());
    for (lease, group) in by_lease {
        for part in group.chunks(ROWS) {
            let mut sql = Sql::new(backend);
            let (set, live) = match backend {
                DatabaseBackend::Postgres => {
                    let ms = sql.bind(lease.as_millis() as i64);
                    (
                        format!(
                            "claimed_until = clock_timestamp() + {ms} * interval '1 millisecond', \
                             create_started_at = clock_timestamp()"
                        ),
                        "clock_timestamp()".to_owned(),
                    )
                }
                _ => {
                    let at = now();
                    let until = at + chrono::Duration::from_std(lease).unwrap_or_default();
                    let (until, started, live) = (sql.bind(until), sql.bind(at), sql.bind(at));
                    (
                        format!("claimed_until = {until}, create_started_at = {started}"),
                        live,
                    )
                }
            };
            let pairs: Vec<String> = part
                .iter()
                .map(|w| {
                    let id = sql.bind(w.message_id.as_str());
                    let token = sql.bind(w.token.as_str());
                    format!("({id}, {token})")
                })
                .collect();
            let text = format!(
                "UPDATE outbox SET {set}, empty_lookups = 0 WHERE claimed_until > {live} \
                 AND (message_id, claim_token) IN (VALUES {}) RETURNING message_id, claim_token",
                pairs.join(", ")
            );
            for row in db.query_all_raw(sql.statement(text)).await? {
                renewed.insert((row.try_get_by_index(0)?, row.try_get_by_index(1)?));
            }
        }
    }
    Ok(renewed)
}

/// Who owns each of these numbers (absent: nobody).
async fn owners_of(
    db: &impl ConnectionTrait,
    numbers: HashSet<&str>,
) -> Result<HashMap<String, String>, DbErr> {
    let mut owners = HashMap::with_capacity(numbers.len());
    let mut numbers: Vec<&str> = numbers.into_iter().collect();
    // In key order, so two batches' share locks and a release's lock queue alike.
    numbers.sort_unstable();
    let postgres = db.get_database_backend() == DatabaseBackend::Postgres;
    for part in numbers.chunks(ROWS) {
        let mut q = phone_number::Entity::find()
            .select_only()
            .columns([phone_number::Column::E164, phone_number::Column::UserId])
            .filter(phone_number::Column::E164.is_in(part.iter().copied()))
            .order_by_asc(phone_number::Column::E164);
        // The check is part of the SENDING write: a share lock holds the owner until the
        // batch commits (a plain read could see an owner a release was removing). SQLite
        // needs none: its one writer holds the file's write lock for the whole batch.
        if postgres {
            q = q.lock_shared();
        }
        let rows = q.into_tuple::<(String, String)>().all(db).await?;
        owners.extend(rows);
    }
    Ok(owners)
}

/// Applies a batch's answers; each one's event cursor (`None`: the message had
/// changed, and only its job was removed), in the order of `writes`.
pub async fn handed_over(
    db: &impl ConnectionTrait,
    writes: &[HandedOver],
) -> Result<Vec<Option<i64>>, DbErr> {
    let backend = db.get_database_backend();
    for part in writes.chunks(ROWS) {
        let mut sql = Sql::new(backend);
        let ids = sql.list(part.iter().map(|w| w.message_id.as_str()));
        let text = format!("DELETE FROM outbox WHERE message_id IN ({ids})");
        db.execute_raw(sql.statement(text)).await?;
    }
    let mut groups: HashMap<(&str, &str, &'static str), Vec<usize>> = HashMap::new();
    for (i, w) in writes.iter().enumerate() {
        groups
            .entry((w.status.as_str(), w.expected.as_str(), w.event_kind))
            .or_default()
            .push(i);
    }
    let mut out = vec![None; writes.len()];
    let at = now();
    for ((status, expected, kind), members) in groups {
        let mut changed = Vec::new();
        for part in members.chunks(ROWS) {
            let mut sql = Sql::new(backend);
            let (status_, expected_, at_) = (sql.bind(status), sql.bind(expected), sql.bind(at));
            let mut sids = String::new();
            let mut segments = String::new();
            let mut sent = String::new();
            for &i in part {
                let w = &writes[i];
                let (id, sid) = (
                    sql.bind(w.message_id.as_str()),
                    sql.bind(w.provider_sid.as_str()),
                );
                sids.push_str(&format!(" WHEN {id} THEN {sid}"));
                let (id, n) = (sql.bind(w.message_id.as_str()), sql.bind(w.segments));
                segments.push_str(&format!(" WHEN {id} THEN COALESCE({n}, segments)"));
                let (id, t) = (sql.bind(w.message_id.as_str()), sql.bind(w.sent_at));
                sent.push_str(&format!(" WHEN {id} THEN {t}"));
            }
            let ids = sql.pairs(
                part.iter()
                    .map(|&i| (writes[i].message_id.as_str(), writes[i].user_id.as_str())),
            );
            // With one message twice in the batch (two answers of a double send), the
            // row changes once, by the first arm of each CASE: the first answer's.
            let text = format!(
                "UPDATE messages SET status = {status_}, updated_at = {at_}, \
                 provider_sid = CASE id{sids} END, segments = CASE id{segments} END, \
                 sent_at = CASE id{sent} END \
                 WHERE status = {expected_} AND (id, user_id) IN (VALUES {ids}) \
                 RETURNING id, user_id, contact_id"
            );
            changed.extend(sql.rows(db, text).await?);
        }
        let cursors = status_events(db, &changed, status, kind).await?;
        let by_id = first_of_each(writes.iter().map(|w| w.message_id.as_str()), &members);
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

/// For each message id among `members`, the first write of it: a message twice in one
/// batch changes once, as the first of two one-by-one writes would (the second then
/// finds it changed).
fn first_of_each<'a>(
    ids: impl Iterator<Item = &'a str>,
    members: &[usize],
) -> HashMap<&'a str, usize> {
    let ids: Vec<&str> = ids.collect();
    let mut first = HashMap::with_capacity(members.len());
    for &i in members {
        first.entry(ids[i]).or_insert(i);
    }
    first
}

/// A message a set statement changed.
pub(super) struct Changed {
    pub(super) id: String,
    pub(super) user_id: String,
    pub(super) contact_id: String,
}

/// The status events (`kind`) of `changed` (now `status`), each muted as its
/// conversation is now; their cursors in the order of `changed`. The status metrics
/// count them once the batch committed ([`super::pipeline::SetWrite::committed`]).
pub(super) async fn status_events(
    db: &impl ConnectionTrait,
    changed: &[Changed],
    status: &str,
    kind: &str,
) -> Result<Vec<i64>, DbErr> {
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    let at = now();
    let muted = muted_conversations(db, changed, at).await?;
    let mut per_user: HashMap<&str, i64> = HashMap::new();
    for c in changed {
        *per_user.entry(c.user_id.as_str()).or_default() += 1;
    }
    let mut next = bump_counters(db, &per_user).await?;
    let mut cursors = Vec::with_capacity(changed.len());
    let mut events = Vec::with_capacity(changed.len());
    let mut notices = Vec::new();
    for c in changed {
        let cursor = next
            .get_mut(c.user_id.as_str())
            .map(|n| {
                *n += 1;
                *n
            })
            .ok_or_else(|| DbErr::RecordNotFound("event counter".into()))?;
        cursors.push(cursor);
        notices.push(format!("{cursor} {}", c.user_id));
        let is_muted = muted.contains(&(c.user_id.as_str(), c.contact_id.as_str()));
        events.push(
            event::Model {
                user_id: c.user_id.clone(),
                cursor,
                kind: kind.to_owned(),
                message_id: Some(c.id.clone()),
                contact_id: Some(c.contact_id.clone()),
                status: Some(status.to_owned()),
                unread_count: None,
                created_at: at,
                muted: is_muted,
            }
            .into_active_model()
            .reset_all(),
        );
    }
    for chunk in chunks(events, 9) {
        execute(db, &event::Entity::insert_many(chunk).into_query()).await?;
    }
    notify(db, &notices).await?;
    Ok(cursors)
}

/// The `(user, contact)` conversations of `changed` that are muted at `at`.
async fn muted_conversations<'a>(
    db: &impl ConnectionTrait,
    changed: &'a [Changed],
    at: DateTime<Utc>,
) -> Result<HashSet<(&'a str, &'a str)>, DbErr> {
    let wanted: HashSet<(&str, &str)> = changed
        .iter()
        .map(|c| (c.user_id.as_str(), c.contact_id.as_str()))
        .collect();
    let users: HashSet<&str> = wanted.iter().map(|w| w.0).collect();
    let contacts: Vec<&str> = wanted
        .iter()
        .map(|w| w.1)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut muted = HashSet::new();
    for part in contacts.chunks(ROWS) {
        let rows = conv::Entity::find()
            .filter(conv::Column::UserId.is_in(users.iter().copied()))
            .filter(conv::Column::ContactId.is_in(part.iter().copied()))
            .filter(conv::Column::Muted.eq(true))
            .all(db)
            .await?;
        muted.extend(
            rows.into_iter()
                .filter(|c| muted_at(c, at))
                .map(|c| (c.user_id, c.contact_id)),
        );
    }
    Ok(wanted
        .into_iter()
        .filter(|(user, contact)| muted.contains(&((*user).to_owned(), (*contact).to_owned())))
        .collect())
}

/// A raw statement's text and values, with the backend's numbered placeholders.
pub(super) struct Sql {
    backend: DatabaseBackend,
    values: Vec<Value>,
}

impl Sql {
    pub(super) fn new(backend: DatabaseBackend) -> Self {
        Self {
            backend,
            values: Vec::new(),
        }
    }

    /// Binds `value`; its numbered placeholder (`$n`, or SQLite's `?n`), so the text
    /// may use values in another order than they were bound.
    pub(super) fn bind(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        match self.backend {
            DatabaseBackend::Postgres => format!("${}", self.values.len()),
            _ => format!("?{}", self.values.len()),
        }
    }

    /// Binds each pair of `items`; their `(a, b)` rows for a `VALUES` list.
    fn pairs<'a>(&mut self, items: impl Iterator<Item = (&'a str, &'a str)>) -> String {
        items
            .map(|(a, b)| format!("({}, {})", self.bind(a), self.bind(b)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Binds each of `items`; their placeholders, comma-separated.
    fn list<'a>(&mut self, items: impl Iterator<Item = &'a str>) -> String {
        items.map(|v| self.bind(v)).collect::<Vec<_>>().join(", ")
    }

    fn statement(self, text: String) -> Statement {
        Statement::from_sql_and_values(self.backend, text, self.values)
    }

    /// Runs an `UPDATE … RETURNING id, user_id, contact_id`.
    pub(super) async fn rows(
        self,
        db: &impl ConnectionTrait,
        text: String,
    ) -> Result<Vec<Changed>, DbErr> {
        db.query_all_raw(self.statement(text))
            .await?
            .into_iter()
            .map(|row| {
                Ok(Changed {
                    id: row.try_get_by_index(0)?,
                    user_id: row.try_get_by_index(1)?,
                    contact_id: row.try_get_by_index(2)?,
                })
            })
            .collect()
    }
}
