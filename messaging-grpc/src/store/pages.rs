//! Conversation pages in one query, decoded by position: ListConversations (each
//! conversation row joined with its last message and its contact; it was three
//! queries, each decoded column by column name) and GetConversation (the contact
//! joined with its page of messages; it was two).

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait as _, ConnectionTrait as _, DbErr, Iterable as _,
    sea_query::{Alias, Expr, ExprTrait as _, JoinType, Order, Query, SelectStatement},
};

use super::{
    Store,
    entities::{contact, conversation as conv, message},
    messages::older_than,
    page_token::Cursor,
    sqlite_reads::{Cell, RowAt},
};

/// Which conversations to read.
pub enum Which<'a> {
    /// A page of the inbox (`archived` false) or the archive, newest first.
    Listing {
        archived: bool,
        after: Option<&'a Cursor>,
        limit: u64,
    },
    /// One conversation.
    One { contact_id: &'a str },
}

/// A conversation with its last message and its contact.
pub struct ConversationRow {
    pub conversation: conv::Model,
    pub last_message: message::Model,
    pub contact: contact::Model,
}

/// The user's conversations `which` selects, each with its last message and contact.
pub async fn conversations(
    store: &Store,
    user_id: &str,
    which: Which<'_>,
) -> Result<Vec<ConversationRow>, DbErr> {
    let mut q = Query::select();
    for c in conv::Column::iter() {
        q.column((conv::Entity, c));
    }
    for c in message::Column::iter() {
        q.column((message::Entity, c));
    }
    for c in contact::Column::iter() {
        q.column((contact::Entity, c));
    }
    // Joined by primary key alone; the owner is checked on the rows (see
    // `owned::find_many`: a user filter on them makes PostgreSQL scan the user's rows).
    q.from(conv::Entity)
        .inner_join(
            message::Entity,
            Expr::col((message::Entity, message::Column::Id))
                .equals((conv::Entity, conv::Column::LastMessageId)),
        )
        .inner_join(
            contact::Entity,
            Expr::col((contact::Entity, contact::Column::Id))
                .equals((conv::Entity, conv::Column::ContactId)),
        )
        .and_where(Expr::col((conv::Entity, conv::Column::UserId)).eq(user_id));
    select(&mut q, which);
    let rows = read::<ConversationRows>(store, &q).await?;
    if let Some(row) = rows
        .iter()
        .find(|r| r.last_message.user_id != user_id || r.contact.user_id != user_id)
    {
        return Err(DbErr::Custom(format!(
            "conversation {} references another user's row",
            row.conversation.contact_id
        )));
    }
    Ok(rows)
}

/// How one row of a page query decodes, whichever driver read it.
trait Decode {
    type Out: Send + 'static;
    fn decode<R: RowAt>(row: &R) -> Result<Self::Out, DbErr>;
}

/// The rows of `q`, each decoded by `D`: on SQLite's page readers (a file), else on
/// the pool.
async fn read<D: Decode>(store: &Store, q: &SelectStatement) -> Result<Vec<D::Out>, DbErr> {
    if let Some(readers) = store.sqlite_reads() {
        return readers.rows(q, |row| D::decode(row)).await;
    }
    let db = store.conn();
    let rows = db.query_all_raw(db.get_database_backend().build(q)).await?;
    rows.iter().map(D::decode).collect()
}

/// A ListConversations row: the conversation, its last message, its contact.
struct ConversationRows;

impl Decode for ConversationRows {
    type Out = ConversationRow;
    fn decode<R: RowAt>(row: &R) -> Result<ConversationRow, DbErr> {
        let mut at = Position(0);
        Ok(ConversationRow {
            conversation: conversation_at(row, &mut at)?,
            last_message: message_at(row, &mut at)?,
            contact: contact_at(row, &mut at)?,
        })
    }
}

/// A GetConversation row: the contact, and one message of its page (none: a contact
/// without messages in this page is one row of NULL messages).
struct ContactMessages;

impl Decode for ContactMessages {
    type Out = (contact::Model, Option<message::Model>);
    fn decode<R: RowAt>(row: &R) -> Result<Self::Out, DbErr> {
        let mut at = Position(0);
        let contact = contact_at(row, &mut at)?;
        if row.cell::<Option<String>>(at.0)?.is_none() {
            return Ok((contact, None));
        }
        Ok((contact, Some(message_at(row, &mut at)?)))
    }
}

/// One of the user's contacts with a page of its conversation (newest first, what
/// was received from it while blocked left out), in one query: the contact left-joined
/// with the page, a subquery that walks `idx_messages_conversation` and stops at
/// `limit`. `None`: the user has no such contact.
pub async fn conversation_messages(
    store: &Store,
    user_id: &str,
    contact_id: &str,
    after: Option<&Cursor>,
    limit: u64,
) -> Result<Option<(contact::Model, Vec<message::Model>)>, DbErr> {
    let mut page = Query::select();
    for c in message::Column::iter() {
        page.column(c);
    }
    page.from(message::Entity)
        .and_where(message::Column::UserId.eq(user_id))
        .and_where(message::Column::ContactId.eq(contact_id))
        .and_where(message::Column::Blocked.eq(false));
    if let Some(c) = after {
        page.cond_where(older_than(c));
    }
    page.order_by(message::Column::CreatedAt, Order::Desc)
        .order_by(message::Column::Id, Order::Desc)
        .limit(limit);

    let m = Alias::new("m");
    let mut q = Query::select();
    for c in contact::Column::iter() {
        q.column((contact::Entity, c));
    }
    for c in message::Column::iter() {
        q.column((m.clone(), c));
    }
    q.from(contact::Entity)
        .join_subquery(
            JoinType::LeftJoin,
            page,
            m.clone(),
            Expr::col((m.clone(), message::Column::ContactId))
                .equals((contact::Entity, contact::Column::Id)),
        )
        .and_where(Expr::col((contact::Entity, contact::Column::UserId)).eq(user_id))
        .and_where(Expr::col((contact::Entity, contact::Column::Id)).eq(contact_id))
        // The page's order again: a join keeps no order of its own.
        .order_by((m.clone(), message::Column::CreatedAt), Order::Desc)
        .order_by((m, message::Column::Id), Order::Desc);
    let mut rows = read::<ContactMessages>(store, &q).await?.into_iter();
    let Some((contact, first)) = rows.next() else {
        return Ok(None);
    };
    let messages = first
        .into_iter()
        .chain(rows.filter_map(|(_, m)| m))
        .collect();
    Ok(Some((contact, messages)))
}

fn select(q: &mut SelectStatement, which: Which<'_>) {
    let col = |c: conv::Column| Expr::col((conv::Entity, c));
    match which {
        Which::One { contact_id } => {
            q.and_where(col(conv::Column::ContactId).eq(contact_id));
        }
        Which::Listing {
            archived,
            after,
            limit,
        } => {
            q.and_where(col(conv::Column::Archived).eq(archived));
            if let Some(c) = after {
                q.and_where(
                    col(conv::Column::LastMessageAt)
                        .lt(c.at)
                        .or(col(conv::Column::LastMessageAt)
                            .eq(c.at)
                            .and(col(conv::Column::ContactId).lt(c.id.as_str()))),
                );
            }
            q.order_by((conv::Entity, conv::Column::LastMessageAt), Order::Desc)
                .order_by((conv::Entity, conv::Column::ContactId), Order::Desc)
                .limit(limit);
        }
    }
}

/// The next column to decode.
struct Position(usize);

impl Position {
    fn get<T: Cell>(&mut self, row: &impl RowAt) -> Result<T, DbErr> {
        let value = row.cell(self.0)?;
        self.0 += 1;
        Ok(value)
    }
}

// The decoders read the columns in the order `Column::iter()` lists them: the order
// the entities declare their fields.

fn conversation_at(row: &impl RowAt, at: &mut Position) -> Result<conv::Model, DbErr> {
    Ok(conv::Model {
        user_id: at.get(row)?,
        contact_id: at.get(row)?,
        owner_e164: at.get(row)?,
        last_message_id: at.get(row)?,
        last_message_at: at.get::<DateTime<Utc>>(row)?,
        unread_count: at.get(row)?,
        updated_at: at.get(row)?,
        archived: at.get(row)?,
        muted: at.get(row)?,
        muted_until: at.get(row)?,
    })
}

fn message_at(row: &impl RowAt, at: &mut Position) -> Result<message::Model, DbErr> {
    Ok(message::Model {
        id: at.get(row)?,
        user_id: at.get(row)?,
        contact_id: at.get(row)?,
        direction: at.get(row)?,
        owner_e164: at.get(row)?,
        legacy_contact_e164: at.get(row)?,
        body_ct: at.get(row)?,
        key_version: at.get(row)?,
        status: at.get(row)?,
        provider_sid: at.get(row)?,
        idempotency_key: at.get(row)?,
        error_code: at.get(row)?,
        error_message: at.get(row)?,
        segments: at.get(row)?,
        num_media: at.get(row)?,
        created_at: at.get(row)?,
        updated_at: at.get(row)?,
        sent_at: at.get(row)?,
        delivered_at: at.get(row)?,
        read_at: at.get(row)?,
        send_at: at.get(row)?,
        blocked: at.get(row)?,
        search_indexed: at.get(row)?,
        contact_number_ct: at.get(row)?,
    })
}

fn contact_at(row: &impl RowAt, at: &mut Position) -> Result<contact::Model, DbErr> {
    Ok(contact::Model {
        id: at.get(row)?,
        user_id: at.get(row)?,
        legacy_e164: at.get(row)?,
        opted_out: at.get(row)?,
        created_at: at.get(row)?,
        name_ct: at.get(row)?,
        blocked_at: at.get(row)?,
        number_ct: at.get(row)?,
        number_index: at.get(row)?,
    })
}

#[cfg(test)]
mod tests {
    use sea_orm::Iterable as _;

    use super::*;

    /// The decoders follow the entities' column order: a field added to an entity
    /// must be added to its decoder at the same place.
    #[test]
    fn decoders_cover_every_column() {
        assert_eq!(conv::Column::iter().count(), 10);
        assert_eq!(message::Column::iter().count(), 24);
        assert_eq!(contact::Column::iter().count(), 9);
    }
}
