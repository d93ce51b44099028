//! New messages — sends and inbound alike — written as a set: a batch's messages with
//! their contacts, media, links, search terms, outbox jobs, opt-out changes,
//! conversations and events take one multi-row statement per table for the whole
//! batch, where writing them one by one took a dozen statements per message (each a
//! hop to SQLite's connection thread, or a round trip to PostgreSQL).
//!
//! Answers stay exact per message: the messages' insert skips rows whose unique keys
//! are taken (`ON CONFLICT DO NOTHING RETURNING id`), and only the rows it returns get
//! their dependent rows, so a lost idempotency or provider-SID race is a
//! [`MessageOutcome::Conflict`] for that message alone. Several messages of one
//! conversation in a batch fold into one upsert of its row; each message's event
//! still carries the unread count as it was right after that message, and each user's
//! events get consecutive cursors from one bump of the user's counter.
//!
//! The writer ([`super::pipeline`]) runs [`apply`] over the whole batch inside a
//! savepoint; if a statement fails, it rolls back and runs each message alone (a batch
//! of one), so one bad write fails alone.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use chrono::{DateTime, Utc};

use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, ConnectionTrait, DbErr, EntityTrait,
    IntoActiveModel as _, QueryFilter as _, QuerySelect as _, QueryTrait as _,
    sea_query::{Expr, InsertStatement, OnConflict, Query},
};

use super::{
    chunks::chunks,
    contacts::SealedNumber,
    entities::{
        contact, media, message, message_media, opt_out, outbox, phone_number, search_pending,
    },
    now,
    outbox::{Due, due_at as outbox_due_at},
    search,
};

mod conversations;

use conversations::conversations_and_events;

/// `events.kind` of a conversation an inbound message brought back from the archive.
pub const CONVERSATION_UNARCHIVED: &str = "conversation_unarchived";

/// A prepared message: encrypted, validated, with its id. `row.contact_id` is filled
/// in when written (the contact is found or created in the same transaction).
#[derive(Clone)]
pub struct NewMessage {
    pub row: message::Model,
    /// New media rows to insert with it (inbound media still to be copied).
    pub new_media: Vec<media::Model>,
    pub links: Vec<message_media::Model>,
    /// 1 for an inbound message, 0 for ours.
    pub unread_delta: i64,
    /// Also queue an outbox job (our sends): due now, or at `row.send_at`.
    pub enqueue: bool,
    /// Also set the contact's opt-out of this message's own number (STOP / START).
    pub opt_out: Option<bool>,
    /// `events.kind` of the message's event.
    pub event_kind: &'static str,
    /// The body's blind-index terms.
    pub search_terms: Vec<Vec<u8>>,
    /// Bring the conversation back from the archive (a new inbound message).
    pub unarchive: bool,
    /// The contact's number, sealed.
    pub contact: SealedNumber,
    /// A send: the writer checks `from` is the user's and the contact has neither
    /// opted out of it nor been blocked ([`MessageOutcome::Refused`] otherwise).
    pub check_sender: bool,
    /// An inbound message: kept but not shown (`blocked`) when the user blocked the
    /// contact, as the writer finds it.
    pub inherit_block: bool,
}

/// Why the writer refused a send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `from` is not a number of the user's.
    NotOwner,
    /// The contact replied STOP to `from`.
    OptedOut,
    /// The user blocked the contact.
    Blocked,
}

/// What writing one [`NewMessage`] did.
#[derive(Debug)]
pub enum MessageOutcome {
    /// Written; the row as stored (contact id filled in) and the cursor of its event
    /// (none for a message from a blocked number: it is kept, not announced).
    Committed {
        row: Box<message::Model>,
        cursor: Option<i64>,
        /// The contact's name, sealed, as the batch found the contact.
        contact_name_ct: Option<Vec<u8>>,
    },
    /// A send the writer's checks refused: nothing was written.
    Refused(Refusal),
    /// A unique key (idempotency key, provider SID, id) is taken: nothing of this
    /// message was written.
    Conflict,
}

/// Writes `writes` in `db` (a transaction), one statement per table; outcomes in the
/// order of `writes`. An error leaves the transaction to be rolled back (to a
/// savepoint) by the caller.
pub async fn apply(
    db: &impl ConnectionTrait,
    writes: &[NewMessage],
) -> Result<Vec<MessageOutcome>, DbErr> {
    if writes.is_empty() {
        return Ok(Vec::new());
    }
    let mut found = find_contacts(db, writes.iter()).await?;
    let refused = checks(db, writes, &found).await?;
    let live: Vec<usize> = (0..writes.len())
        .filter(|&i| refused[i].is_none())
        .collect();
    let contacts = contacts(db, writes, &live, &mut found).await?;
    let mut rows: Vec<message::Model> = Vec::with_capacity(writes.len());
    for (i, w) in writes.iter().enumerate() {
        let mut row = w.row.clone();
        if let Some(c) = contacts.get(&i) {
            row.contact_id = c.id.clone();
            // A message from a number the user blocked is kept, but not shown.
            row.blocked |= w.inherit_block && c.blocked;
        }
        rows.push(row);
    }
    let live_rows: Vec<&message::Model> = live.iter().map(|&i| &rows[i]).collect();
    let inserted = insert_messages(db, &live_rows).await?;
    let written: Vec<usize> = live
        .iter()
        .copied()
        .filter(|&i| inserted.contains(&rows[i].id))
        .collect();
    dependents(db, writes, &rows, &written).await?;
    for &i in &written {
        if let Some(opted_out) = writes[i].opt_out {
            let (r, owner) = (&rows[i], &rows[i].owner_e164);
            super::opt_outs::set(db, &r.user_id, owner, &r.contact_id, opted_out).await?;
        }
    }
    // Blocked numbers' messages are kept for the record: not shown, counted or announced.
    let shown: Vec<usize> = written
        .iter()
        .copied()
        .filter(|&i| !rows[i].blocked)
        .collect();
    let cursors = conversations_and_events(db, writes, &rows, &shown).await?;
    let mut rows: Vec<Option<message::Model>> = rows.into_iter().map(Some).collect();
    let mut refused = refused;
    Ok((0..writes.len())
        .map(|i| {
            if let Some(why) = refused[i].take() {
                MessageOutcome::Refused(why)
            } else if inserted.contains(&writes[i].row.id) {
                MessageOutcome::Committed {
                    row: Box::new(rows[i].take().expect("each row is taken once")),
                    cursor: cursors.get(&i).copied(),
                    contact_name_ct: contacts.get(&i).and_then(|c| c.name_ct.clone()),
                }
            } else {
                MessageOutcome::Conflict
            }
        })
        .collect())
}

/// A contact as the batch needs it.
#[derive(Clone)]
struct ContactRef {
    id: String,
    blocked: bool,
    name_ct: Option<Vec<u8>>,
}

/// Contacts found so far, by user and blind index.
type Found = HashMap<(String, Vec<u8>), ContactRef>;

fn existing<'a>(found: &'a Found, w: &NewMessage) -> Option<&'a ContactRef> {
    w.contact
        .lookup
        .iter()
        .find_map(|index| found.get(&(w.row.user_id.clone(), index.clone())))
}

/// What the writer checks for each send in the batch itself, instead of reads
/// before it: `from` is the caller's number, and the contact (if there is one) has
/// not opted out of it and is not blocked — in that order, as the errors say.
async fn checks(
    db: &impl ConnectionTrait,
    writes: &[NewMessage],
    found: &Found,
) -> Result<Vec<Option<Refusal>>, DbErr> {
    let checked: Vec<usize> = (0..writes.len())
        .filter(|&i| writes[i].check_sender)
        .collect();
    let mut refused = vec![None; writes.len()];
    if checked.is_empty() {
        return Ok(refused);
    }
    let numbers: HashSet<&str> = checked
        .iter()
        .map(|&i| writes[i].row.owner_e164.as_str())
        .collect();
    let owners: HashMap<String, String> = phone_number::Entity::find()
        .select_only()
        .columns([phone_number::Column::E164, phone_number::Column::UserId])
        .filter(phone_number::Column::E164.is_in(numbers))
        .into_tuple::<(String, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let contact_ids: HashSet<&str> = checked
        .iter()
        .filter_map(|&i| existing(found, &writes[i]).map(|c| c.id.as_str()))
        .collect();
    let opted_out: HashSet<(String, String, String)> = if contact_ids.is_empty() {
        HashSet::new()
    } else {
        opt_out::Entity::find()
            .select_only()
            .columns([
                opt_out::Column::UserId,
                opt_out::Column::OwnerE164,
                opt_out::Column::ContactId,
            ])
            .filter(opt_out::Column::ContactId.is_in(contact_ids))
            .into_tuple::<(String, String, String)>()
            .all(db)
            .await?
            .into_iter()
            .collect()
    };
    for &i in &checked {
        let r = &writes[i].row;
        let contact = existing(found, &writes[i]);
        refused[i] = if owners.get(&r.owner_e164) != Some(&r.user_id) {
            Some(Refusal::NotOwner)
        } else if contact.is_some_and(|c| {
            opted_out.contains(&(r.user_id.clone(), r.owner_e164.clone(), c.id.clone()))
        }) {
            Some(Refusal::OptedOut)
        } else if contact.is_some_and(|c| c.blocked) {
            Some(Refusal::Blocked)
        } else {
            None
        };
    }
    Ok(refused)
}

/// The contact of each live write: its existing contact (matched by blind index under
/// any live key), or one created now. Writes of one new number share the first's row.
async fn contacts(
    db: &impl ConnectionTrait,
    writes: &[NewMessage],
    live: &[usize],
    found: &mut Found,
) -> Result<HashMap<usize, ContactRef>, DbErr> {
    let mut new_rows = Vec::new();
    let mut queued = HashSet::new();
    for &i in live {
        let w = &writes[i];
        let key = (w.row.user_id.clone(), w.contact.index.clone());
        if existing(found, w).is_none() && queued.insert(key) {
            new_rows.push(
                contact::Model {
                    id: w.contact.new_id.clone(),
                    user_id: w.row.user_id.clone(),
                    legacy_e164: String::new(),
                    opted_out: false,
                    created_at: now(),
                    name_ct: None,
                    blocked_at: None,
                    number_ct: Some(w.contact.ct.clone()),
                    number_index: Some(w.contact.index.clone()),
                }
                .into_active_model()
                .reset_all(),
            );
        }
    }
    if !new_rows.is_empty() {
        for chunk in chunks(new_rows, 9) {
            let q = contact::Entity::insert_many(chunk)
                .on_conflict(
                    OnConflict::columns([contact::Column::UserId, contact::Column::NumberIndex])
                        .do_nothing()
                        .to_owned(),
                )
                .into_query();
            execute(db, &q).await?;
        }
        // Read back what was created (or created meanwhile by another replica).
        let missing: Vec<&NewMessage> = live
            .iter()
            .map(|&i| &writes[i])
            .filter(|w| existing(found, w).is_none())
            .collect();
        let more = find_contacts(db, missing.into_iter()).await?;
        found.extend(more);
    }
    live.iter()
        .map(|&i| {
            existing(found, &writes[i])
                .cloned()
                .map(|c| (i, c))
                .ok_or_else(|| DbErr::RecordNotFound("contact vanished after insert".into()))
        })
        .collect()
}

/// Contacts of these writes' users with one of their blind indexes, keyed by both.
async fn find_contacts<'a>(
    db: &impl ConnectionTrait,
    writes: impl Iterator<Item = &'a NewMessage>,
) -> Result<Found, DbErr> {
    let mut users = HashSet::new();
    let mut indexes = HashSet::new();
    for w in writes {
        users.insert(w.row.user_id.clone());
        indexes.extend(w.contact.lookup.iter().cloned());
    }
    if users.is_empty() || indexes.is_empty() {
        return Ok(HashMap::new());
    }
    type Row = (
        String,
        String,
        Option<Vec<u8>>,
        Option<DateTime<Utc>>,
        Option<Vec<u8>>,
    );
    let rows: Vec<Row> = contact::Entity::find()
        .select_only()
        .columns([
            contact::Column::Id,
            contact::Column::UserId,
            contact::Column::NumberIndex,
            contact::Column::BlockedAt,
            contact::Column::NameCt,
        ])
        .filter(contact::Column::UserId.is_in(users))
        .filter(contact::Column::NumberIndex.is_in(indexes))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, user, index, blocked_at, name_ct)| {
            let c = ContactRef {
                id,
                blocked: blocked_at.is_some(),
                name_ct,
            };
            Some(((user, index?), c))
        })
        .collect())
}

/// Inserts the rows whose unique keys are free; returns the ids it inserted.
async fn insert_messages(
    db: &impl ConnectionTrait,
    rows: &[&message::Model],
) -> Result<HashSet<String>, DbErr> {
    let models: Vec<_> = rows
        .iter()
        .map(|r| (*r).clone().into_active_model().reset_all())
        .collect();
    let mut inserted = HashSet::with_capacity(rows.len());
    for chunk in chunks(models, 25) {
        let mut q = message::Entity::insert_many(chunk)
            // No target: any unique key (id, idempotency key, provider SID) taken.
            .on_conflict(OnConflict::new().do_nothing().to_owned())
            .into_query();
        q.returning_col(message::Column::Id);
        for row in query(db, &q).await? {
            inserted.insert(row.try_get_by_index::<String>(0)?);
        }
    }
    Ok(inserted)
}

/// Media, links, search terms and outbox jobs of the written messages.
async fn dependents(
    db: &impl ConnectionTrait,
    writes: &[NewMessage],
    rows: &[message::Model],
    written: &[usize],
) -> Result<(), DbErr> {
    let new_media: Vec<_> = written
        .iter()
        .flat_map(|&i| writes[i].new_media.iter())
        .map(|m| m.clone().into_active_model().reset_all())
        .collect();
    for chunk in chunks(new_media, 12) {
        execute(db, &media::Entity::insert_many(chunk).into_query()).await?;
    }
    let links: Vec<_> = written
        .iter()
        .flat_map(|&i| writes[i].links.iter())
        .map(|l| l.clone().into_active_model().reset_all())
        .collect();
    for chunk in chunks(links, 4) {
        execute(db, &message_media::Entity::insert_many(chunk).into_query()).await?;
    }
    // One appended row per message; the indexer moves them into the index in bulk
    // ([`super::search`]).
    let pending: Vec<_> = written
        .iter()
        // Not shown anywhere (blocked), so not searchable either.
        .filter(|&&i| !rows[i].blocked && !writes[i].search_terms.is_empty())
        .map(|&i| {
            let r = &rows[i];
            search::pending(&r.user_id, &r.id, &writes[i].search_terms)
                .into_active_model()
                .reset_all()
        })
        .collect();
    for chunk in chunks(pending, 3) {
        execute(db, &search_pending::Entity::insert_many(chunk).into_query()).await?;
    }
    // Due now by the clock claims compare with: PostgreSQL's (`clock_timestamp()`,
    // as `now()` is the batch's start), so a replica whose clock is ahead does not
    // hold its new jobs back by the skew; SQLite is one process with one clock.
    let due_now = outbox_due_at(db.get_database_backend(), Due::After(Duration::ZERO));
    let jobs: Vec<usize> = written
        .iter()
        .copied()
        .filter(|&i| writes[i].enqueue)
        .collect();
    use outbox::Column as O;
    for part in chunks(jobs, 5) {
        let mut q = Query::insert();
        q.into_table(outbox::Entity).columns([
            O::MessageId,
            O::UserId,
            O::Attempts,
            O::NextAttemptAt,
            O::EmptyLookups,
        ]);
        for i in part {
            // Due later for a scheduled send: the dispatcher claims due jobs only.
            let due = rows[i].send_at.map_or_else(|| due_now.clone(), Expr::value);
            q.values_panic([
                Expr::value(rows[i].id.clone()),
                Expr::value(rows[i].user_id.clone()),
                Expr::value(0),
                due,
                Expr::value(0),
            ]);
        }
        execute(db, &q).await?;
    }
    Ok(())
}

pub(super) async fn execute(db: &impl ConnectionTrait, q: &InsertStatement) -> Result<(), DbErr> {
    db.execute(q).await.map(|_| ())
}

pub(super) async fn query(
    db: &impl ConnectionTrait,
    q: &InsertStatement,
) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
    let backend = db.get_database_backend();
    db.query_all_raw(backend.build(q)).await
}
