//! Delivery hardening: a claim token on outbox leases (outcome writes are fenced by
//! it), and opt-outs per sending number (Twilio blocks a STOP per sender, not per
//! account: a STOP to one of a user's numbers must not silence the others).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    ClaimToken,
}

#[derive(DeriveIden)]
enum OptOuts {
    Table,
    UserId,
    OwnerE164,
    ContactId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(string_null(Outbox::ClaimToken))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OptOuts::Table)
                    .col(string(OptOuts::UserId))
                    .col(string(OptOuts::OwnerE164))
                    .col(string(OptOuts::ContactId))
                    .primary_key(
                        Index::create()
                            .col(OptOuts::UserId)
                            .col(OptOuts::OwnerE164)
                            .col(OptOuts::ContactId),
                    )
                    .to_owned(),
            )
            .await?;
        // Contacts opted out before this migration: keep them opted out from every
        // number of the user that has written with them (the old rule's effect).
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO opt_outs (user_id, owner_e164, contact_id) \
                 SELECT DISTINCT m.user_id, m.owner_e164, m.contact_id FROM messages m \
                 JOIN contacts c ON c.id = m.contact_id AND c.user_id = m.user_id \
                 WHERE c.opted_out",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OptOuts::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .drop_column(Outbox::ClaimToken)
                    .to_owned(),
            )
            .await
    }
}
