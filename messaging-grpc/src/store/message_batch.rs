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

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait,
    FromQueryResult as _, IntoActiveModel as _, QueryFilter as _, QuerySelect as _,
    QueryTrait as _, Statement, Value,
    sea_query::{Expr, InsertStatement, OnConflict, Query},
};

use super::{
    contacts::SealedNumber,
    conversations::muted_at,
    entities::{
        contact, conversation as conv, event, media, message, message_media, opt_out, outbox,
        phone_number, search_term, user_event_seq,
    },
    events::NOTIFY_CHANNEL,
    now,
};

/// `events.kind` of a conversation an inbound message brought back from the archive.
pub const CONVERSATION_UNARCHIVED: &str = "conversation_unarchived";

/// Bound values one statement may carry: under SQLite's 32,766 and PostgreSQL's
/// 65,535, so a batch's rows are split into statements of at most this many values.
const MAX_VALUES: usize = 30_000;

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
    let terms: Vec<_> = written
        .iter()
        // Not shown anywhere (blocked), so not searchable either.
        .filter(|&&i| !rows[i].blocked)
        .flat_map(|&i| {
            let r = &rows[i];
            writes[i]
                .search_terms
                .iter()
                .map(|term| search_term::Model {
                    user_id: r.user_id.clone(),
                    term: term.clone(),
                    message_id: r.id.clone(),
                })
        })
        .map(|t| t.into_active_model().reset_all())
        .collect();
    for chunk in chunks(terms, 3) {
        // Two words with one 128-bit term would be the same term: keep one row.
        let q = search_term::Entity::insert_many(chunk)
            .on_conflict(OnConflict::new().do_nothing().to_owned())
            .into_query();
        execute(db, &q).await?;
    }
    let at = now();
    let jobs: Vec<_> = written
        .iter()
        .filter(|&&i| writes[i].enqueue)
        .map(|&i| {
            outbox::Model {
                message_id: rows[i].id.clone(),
                user_id: rows[i].user_id.clone(),
                attempts: 0,
                // Due later for a scheduled send: the dispatcher claims due jobs only.
                next_attempt_at: rows[i].send_at.unwrap_or(at),
                claimed_until: None,
                last_error: None,
                claim_token: None,
                create_started_at: None,
                empty_lookups: 0,
            }
            .into_active_model()
            .reset_all()
        })
        .collect();
    for chunk in chunks(jobs, 7) {
        execute(db, &outbox::Entity::insert_many(chunk).into_query()).await?;
    }
    Ok(())
}

/// One conversation's share of the batch: its writes in batch order.
struct Group {
    user_id: String,
    contact_id: String,
    members: Vec<usize>,
}

/// Unarchives, upserts each conversation once, then appends the events (last: the
/// counter rows they bump stay locked until commit, so cursors follow commit order).
/// Returns each shown write's event cursor.
async fn conversations_and_events(
    db: &impl ConnectionTrait,
    writes: &[NewMessage],
    rows: &[message::Model],
    shown: &[usize],
) -> Result<HashMap<usize, i64>, DbErr> {
    if shown.is_empty() {
        return Ok(HashMap::new());
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of: HashMap<(&str, &str), usize> = HashMap::new();
    for &i in shown {
        let key = (rows[i].user_id.as_str(), rows[i].contact_id.as_str());
        let g = *group_of.entry(key).or_insert_with(|| {
            groups.push(Group {
                user_id: key.0.to_owned(),
                contact_id: key.1.to_owned(),
                members: Vec::new(),
            });
            groups.len() - 1
        });
        groups[g].members.push(i);
    }
    let wants_unarchive: Vec<&Group> = groups
        .iter()
        .filter(|g| g.members.iter().any(|&i| writes[i].unarchive))
        .collect();
    let unarchived = unarchive(db, &wants_unarchive).await?;
    let convs = upsert_conversations(db, writes, rows, &groups).await?;

    // Events in batch order; each user's take consecutive cursors.
    struct Pending<'a> {
        write: usize,
        kind: &'a str,
        message: bool,
        unread: Option<i64>,
        muted: bool,
    }
    let at = now();
    let mut pending: Vec<Pending> = Vec::new();
    let mut unread_after: HashMap<usize, i64> = HashMap::new();
    for (g, group) in groups.iter().enumerate() {
        let conv = &convs[g];
        // The count after the last member is the row's; walk back to each member's.
        let mut unread = conv.unread_count;
        for &i in group.members.iter().rev() {
            unread_after.insert(i, unread);
            unread -= writes[i].unread_delta;
        }
    }
    let mut announced_unarchive = HashSet::new();
    for &i in shown {
        let g = group_of[&(rows[i].user_id.as_str(), rows[i].contact_id.as_str())];
        let muted = muted_at(&convs[g], at);
        let back = unarchived.contains(&(rows[i].user_id.clone(), rows[i].contact_id.clone()));
        if writes[i].unarchive && back && announced_unarchive.insert(g) {
            pending.push(Pending {
                write: i,
                kind: CONVERSATION_UNARCHIVED,
                message: false,
                unread: None,
                muted,
            });
        }
        pending.push(Pending {
            write: i,
            kind: writes[i].event_kind,
            message: true,
            unread: unread_after.get(&i).copied(),
            muted,
        });
    }
    let mut per_user: HashMap<&str, i64> = HashMap::new();
    for p in &pending {
        *per_user.entry(rows[p.write].user_id.as_str()).or_default() += 1;
    }
    let mut next = bump_counters(db, &per_user).await?;
    let mut cursors = HashMap::new();
    let mut events = Vec::with_capacity(pending.len());
    let mut notices = Vec::new();
    for p in &pending {
        let r = &rows[p.write];
        let cursor = next
            .get_mut(r.user_id.as_str())
            .map(|c| {
                *c += 1;
                *c
            })
            .ok_or_else(|| DbErr::RecordNotFound("event counter".into()))?;
        if p.message {
            cursors.insert(p.write, cursor);
        }
        notices.push(format!("{cursor} {}", r.user_id));
        events.push(
            event::Model {
                user_id: r.user_id.clone(),
                cursor,
                kind: p.kind.to_owned(),
                message_id: p.message.then(|| r.id.clone()),
                contact_id: Some(r.contact_id.clone()),
                status: p.message.then(|| r.status.clone()),
                unread_count: p.unread,
                created_at: at,
                muted: p.muted,
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

/// Brings these conversations back from the archive (one statement each: an inbound
/// message to an archived conversation is rare); `(user, contact)` of those that were.
async fn unarchive(
    db: &impl ConnectionTrait,
    groups: &[&Group],
) -> Result<HashSet<(String, String)>, DbErr> {
    let mut changed = HashSet::new();
    for g in groups {
        let res = conv::Entity::update_many()
            .col_expr(conv::Column::Archived, Expr::value(false))
            .filter(conv::Column::UserId.eq(g.user_id.as_str()))
            .filter(conv::Column::ContactId.eq(g.contact_id.as_str()))
            .filter(conv::Column::Archived.eq(true))
            .exec(db)
            .await?;
        if res.rows_affected == 1 {
            changed.insert((g.user_id.clone(), g.contact_id.clone()));
        }
    }
    Ok(changed)
}

/// One upsert for every conversation of the batch: each gets its newest message as
/// the last one (only ever forward in time) and the sum of its unread deltas. The
/// rows as they now are, in `groups` order.
async fn upsert_conversations(
    db: &impl ConnectionTrait,
    writes: &[NewMessage],
    rows: &[message::Model],
    groups: &[Group],
) -> Result<Vec<conv::Model>, DbErr> {
    let models: Vec<_> = groups
        .iter()
        .map(|g| {
            let newest = g
                .members
                .iter()
                .copied()
                .max_by_key(|&i| (rows[i].created_at, rows[i].id.clone()))
                .expect("a group has members");
            let r = &rows[newest];
            conv::Model {
                user_id: g.user_id.clone(),
                contact_id: g.contact_id.clone(),
                owner_e164: r.owner_e164.clone(),
                last_message_id: r.id.clone(),
                last_message_at: r.created_at,
                unread_count: g.members.iter().map(|&i| writes[i].unread_delta).sum(),
                updated_at: r.created_at,
                archived: false,
                muted: false,
                muted_until: None,
            }
            .into_active_model()
            .reset_all()
        })
        .collect();
    let newer = "excluded.last_message_at >= conversations.last_message_at";
    let pick = |col: &str| {
        Expr::cust(format!(
            "CASE WHEN {newer} THEN excluded.{col} ELSE conversations.{col} END"
        ))
    };
    let mut by_key: HashMap<(String, String), conv::Model> = HashMap::new();
    for chunk in chunks(models, 10) {
        let mut q = conv::Entity::insert_many(chunk)
            .on_conflict(
                OnConflict::columns([conv::Column::UserId, conv::Column::ContactId])
                    .values([
                        (conv::Column::OwnerE164, pick("owner_e164")),
                        (conv::Column::LastMessageId, pick("last_message_id")),
                        (conv::Column::LastMessageAt, pick("last_message_at")),
                        (
                            conv::Column::UnreadCount,
                            Expr::cust("conversations.unread_count + excluded.unread_count"),
                        ),
                        (conv::Column::UpdatedAt, pick("updated_at")),
                    ])
                    .to_owned(),
            )
            .into_query();
        q.returning_all();
        for row in query(db, &q).await? {
            let c = conv::Model::from_query_result(&row, "")?;
            by_key.insert((c.user_id.clone(), c.contact_id.clone()), c);
        }
    }
    groups
        .iter()
        .map(|g| {
            by_key
                .remove(&(g.user_id.clone(), g.contact_id.clone()))
                .ok_or_else(|| DbErr::RecordNotFound("conversation after upsert".into()))
        })
        .collect()
}

/// Moves each user's event counter on by their count of new events; returns each
/// user's last cursor before this batch (the batch's events follow it).
async fn bump_counters<'a>(
    db: &impl ConnectionTrait,
    per_user: &HashMap<&'a str, i64>,
) -> Result<HashMap<&'a str, i64>, DbErr> {
    let mut q = Query::insert();
    q.into_table(user_event_seq::Entity).columns([
        user_event_seq::Column::UserId,
        user_event_seq::Column::LastCursor,
        user_event_seq::Column::PrunedThrough,
    ]);
    for (user, n) in per_user {
        q.values_panic([(*user).into(), (*n).into(), 0i64.into()]);
    }
    q.on_conflict(
        OnConflict::column(user_event_seq::Column::UserId)
            .value(
                user_event_seq::Column::LastCursor,
                Expr::cust("user_event_seq.last_cursor + excluded.last_cursor"),
            )
            .to_owned(),
    )
    .returning(Query::returning().columns([
        user_event_seq::Column::UserId,
        user_event_seq::Column::LastCursor,
    ]));
    let mut before = HashMap::with_capacity(per_user.len());
    for row in query(db, &q).await? {
        let user: String = row.try_get_by_index(0)?;
        let last: i64 = row.try_get_by_index(1)?;
        if let Some((user, n)) = per_user.get_key_value(user.as_str()) {
            before.insert(*user, last - n);
        }
    }
    Ok(before)
}

/// On PostgreSQL, one NOTIFY per event (delivered at commit) wakes every replica's
/// streams; SQLite is one process (the caller announces in-process after commit).
async fn notify(db: &impl ConnectionTrait, notices: &[String]) -> Result<(), DbErr> {
    if db.get_database_backend() != DatabaseBackend::Postgres || notices.is_empty() {
        return Ok(());
    }
    for chunk in notices.chunks(1_000) {
        let calls: Vec<String> = (0..chunk.len())
            .map(|n| format!("pg_notify($1, ${})", n + 2))
            .collect();
        let mut values = Vec::with_capacity(chunk.len() + 1);
        values.push(Value::from(NOTIFY_CHANNEL));
        values.extend(chunk.iter().map(|p| Value::from(p.as_str())));
        let sql = format!("SELECT {}", calls.join(", "));
        db.execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    }
    Ok(())
}

/// `items` in runs small enough for one statement of `columns` values per row.
fn chunks<T>(items: Vec<T>, columns: usize) -> Vec<Vec<T>> {
    let per = (MAX_VALUES / columns.max(1)).max(1);
    let mut out = Vec::with_capacity(items.len().div_ceil(per));
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        out.push(items.by_ref().take(per).collect());
    }
    out
}

async fn execute(db: &impl ConnectionTrait, q: &InsertStatement) -> Result<(), DbErr> {
    db.execute(q).await.map(|_| ())
}

async fn query(
    db: &impl ConnectionTrait,
    q: &InsertStatement,
) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
    let backend = db.get_database_backend();
    db.query_all_raw(backend.build(q)).await
}
