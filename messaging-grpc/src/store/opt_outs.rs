//! `opt_outs`: which contact opted out of which of the user's numbers. Twilio blocks
//! per sender, so we do too: a STOP to one number leaves the user's others open.

use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::entities::opt_out;

/// Records (STOP, Twilio error 21610) or clears (START) an opt-out.
pub async fn set(
    db: &impl ConnectionTrait,
    user_id: &str,
    owner_e164: &str,
    contact_id: &str,
    opted_out: bool,
) -> Result<(), DbErr> {
    if opted_out {
        let row = opt_out::ActiveModel {
            user_id: Set(user_id.to_owned()),
            owner_e164: Set(owner_e164.to_owned()),
            contact_id: Set(contact_id.to_owned()),
        };
        opt_out::Entity::insert(row)
            .on_conflict_do_nothing_on([
                opt_out::Column::UserId,
                opt_out::Column::OwnerE164,
                opt_out::Column::ContactId,
            ])
            .exec_without_returning(db)
            .await?;
    } else {
        opt_out::Entity::delete_many()
            .filter(opt_out::Column::UserId.eq(user_id))
            .filter(opt_out::Column::OwnerE164.eq(owner_e164))
            .filter(opt_out::Column::ContactId.eq(contact_id))
            .exec(db)
            .await?;
    }
    Ok(())
}
