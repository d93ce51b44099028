//! `audit_events`: the operator actions log. Written in the transaction of the action
//! it records where there is one, so an action and its record commit together.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::{entities::audit_event, now, page_token::Cursor};

/// An action to record.
pub struct NewAuditEvent<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target_user_id: Option<&'a str>,
    pub target: Option<&'a str>,
    /// JSON: counts and ids, never content.
    pub details: serde_json::Value,
}

pub async fn insert(db: &impl ConnectionTrait, e: NewAuditEvent<'_>) -> Result<(), DbErr> {
    audit_event::Entity::insert(audit_event::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        at: Set(now()),
        actor: Set(e.actor.to_owned()),
        action: Set(e.action.to_owned()),
        target_user_id: Set(e.target_user_id.map(str::to_owned)),
        target: Set(e.target.map(str::to_owned)),
        details: Set(e.details.to_string()),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// A page of the log, newest first, optionally of one action and/or target user.
/// `_any`: operators read every user's entries.
pub async fn page_any(
    db: &impl ConnectionTrait,
    action: Option<&str>,
    target_user_id: Option<&str>,
    after: Option<&Cursor>,
    limit: u64,
) -> Result<Vec<audit_event::Model>, DbErr> {
    let mut q = audit_event::Entity::find();
    if let Some(a) = action {
        q = q.filter(audit_event::Column::Action.eq(a));
    }
    if let Some(u) = target_user_id {
        q = q.filter(audit_event::Column::TargetUserId.eq(u));
    }
    if let Some(c) = after {
        q = q.filter(
            Condition::any().add(audit_event::Column::At.lt(c.at)).add(
                Condition::all()
                    .add(audit_event::Column::At.eq(c.at))
                    .add(audit_event::Column::Id.lt(c.id.as_str())),
            ),
        );
    }
    q.order_by_desc(audit_event::Column::At)
        .order_by_desc(audit_event::Column::Id)
        .limit(limit)
        .all(db)
        .await
}
