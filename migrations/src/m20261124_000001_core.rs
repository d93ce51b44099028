//! Core tables: numbers, contacts, conversations, messages, wrapped user keys, outbox.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PhoneNumbers {
    Table,
    E164,
    UserId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Contacts {
    Table,
    Id,
    UserId,
    E164,
    OptedOut,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Conversations {
    Table,
    UserId,
    ContactId,
    OwnerE164,
    LastMessageId,
    LastMessageAt,
    UnreadCount,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    UserId,
    ContactId,
    Direction,
    OwnerE164,
    ContactE164,
    BodyCt,
    KeyVersion,
    Status,
    ProviderSid,
    IdempotencyKey,
    ErrorCode,
    ErrorMessage,
    Segments,
    NumMedia,
    CreatedAt,
    UpdatedAt,
    SentAt,
    DeliveredAt,
    ReadAt,
}

#[derive(DeriveIden)]
enum UserKeys {
    Table,
    UserId,
    Version,
    WrappedDek,
    MasterKeyId,
    Algorithm,
    CreatedAt,
    DestroyedAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    MessageId,
    UserId,
    Attempts,
    NextAttemptAt,
    ClaimedUntil,
    LastError,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PhoneNumbers::Table)
                    .col(string(PhoneNumbers::E164).primary_key())
                    .col(string(PhoneNumbers::UserId))
                    .col(timestamp_with_time_zone(PhoneNumbers::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_phone_numbers_user")
                    .table(PhoneNumbers::Table)
                    .col(PhoneNumbers::UserId)
                    .col(PhoneNumbers::E164)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Contacts::Table)
                    .col(string(Contacts::Id).primary_key())
                    .col(string(Contacts::UserId))
                    .col(string(Contacts::E164))
                    .col(boolean(Contacts::OptedOut).default(false))
                    .col(timestamp_with_time_zone(Contacts::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_contacts_user_e164")
                    .table(Contacts::Table)
                    .col(Contacts::UserId)
                    .col(Contacts::E164)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Conversations::Table)
                    .col(string(Conversations::UserId))
                    .col(string(Conversations::ContactId))
                    .col(string(Conversations::OwnerE164))
                    .col(string(Conversations::LastMessageId))
                    .col(timestamp_with_time_zone(Conversations::LastMessageAt))
                    .col(big_integer(Conversations::UnreadCount).default(0))
                    .col(timestamp_with_time_zone(Conversations::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(Conversations::UserId)
                            .col(Conversations::ContactId),
                    )
                    .to_owned(),
            )
            .await?;
        // ListConversations is one range scan of this index, newest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_conversations_recent")
                    .table(Conversations::Table)
                    .col(Conversations::UserId)
                    .col(Conversations::LastMessageAt)
                    .col(Conversations::ContactId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .col(string(Messages::Id).primary_key())
                    .col(string(Messages::UserId))
                    .col(string(Messages::ContactId))
                    .col(string(Messages::Direction))
                    .col(string(Messages::OwnerE164))
                    .col(string(Messages::ContactE164))
                    .col(blob(Messages::BodyCt))
                    .col(integer(Messages::KeyVersion))
                    .col(string(Messages::Status))
                    .col(string_null(Messages::ProviderSid))
                    .col(string_null(Messages::IdempotencyKey))
                    .col(integer_null(Messages::ErrorCode))
                    .col(string_null(Messages::ErrorMessage))
                    .col(integer(Messages::Segments))
                    .col(integer(Messages::NumMedia).default(0))
                    .col(timestamp_with_time_zone(Messages::CreatedAt))
                    .col(timestamp_with_time_zone(Messages::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Messages::SentAt))
                    .col(timestamp_with_time_zone_null(Messages::DeliveredAt))
                    .col(timestamp_with_time_zone_null(Messages::ReadAt))
                    .to_owned(),
            )
            .await?;
        // NULLs are distinct in unique indexes on both SQLite and PostgreSQL, so
        // messages without a sid / key do not collide.
        manager
            .create_index(
                Index::create()
                    .name("uq_messages_provider_sid")
                    .table(Messages::Table)
                    .col(Messages::ProviderSid)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_messages_user_idempotency")
                    .table(Messages::Table)
                    .col(Messages::UserId)
                    .col(Messages::IdempotencyKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // GetConversation pages and unread counting both scan this index.
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_conversation")
                    .table(Messages::Table)
                    .col(Messages::UserId)
                    .col(Messages::ContactId)
                    .col(Messages::CreatedAt)
                    .col(Messages::Id)
                    .to_owned(),
            )
            .await?;

        // The reconciliation job looks for messages stuck in a non-terminal status.
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_status_updated")
                    .table(Messages::Table)
                    .col(Messages::Status)
                    .col(Messages::UpdatedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(UserKeys::Table)
                    .col(string(UserKeys::UserId))
                    .col(integer(UserKeys::Version))
                    .col(blob_null(UserKeys::WrappedDek))
                    .col(string(UserKeys::MasterKeyId))
                    .col(string(UserKeys::Algorithm))
                    .col(timestamp_with_time_zone(UserKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(UserKeys::DestroyedAt))
                    .primary_key(Index::create().col(UserKeys::UserId).col(UserKeys::Version))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(string(Outbox::MessageId).primary_key())
                    .col(string(Outbox::UserId))
                    .col(integer(Outbox::Attempts).default(0))
                    .col(timestamp_with_time_zone(Outbox::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(Outbox::ClaimedUntil))
                    .col(string_null(Outbox::LastError))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_due")
                    .table(Outbox::Table)
                    .col(Outbox::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Outbox::Table.into_iden(),
            UserKeys::Table.into_iden(),
            Messages::Table.into_iden(),
            Conversations::Table.into_iden(),
            Contacts::Table.into_iden(),
            PhoneNumbers::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
