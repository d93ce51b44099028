//! The conversations and events of a batch's shown messages: each conversation
//! upserted once, each user's counter bumped once, the events appended (with one
//! NOTIFY per event on PostgreSQL).

use std::collections::{HashMap, HashSet};

use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, ConnectionTrait, DbErr, EntityTrait,
    FromQueryResult as _, IntoActiveModel as _, QueryFilter as _, QueryTrait as _,
    sea_query::{Expr, OnConflict},
};

use super::super::{
    chunks::chunks,
    conversations::muted_at,
    entities::{conversation as conv, event, message},
    events::{bump_counters, notify},
    now,
};
use super::{CONVERSATION_UNARCHIVED, NewMessage, execute, query};

/// One conversation's share of the batch: its writes in batch order.
struct Group {
    user_id: String,
    contact_id: String,
    members: Vec<usize>,
}

/// Unarchives, upserts each conversation once, then appends the events (last: the
/// counter rows they bump stay locked until commit, so cursors follow commit order).
/// Returns each shown write's event cursor.
pub(super) async fn conversations_and_events(
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
