//! Key operations: master-key rotation finds the data keys not yet under the active
//! master key, and shredding finds a user's media, without scanning whole tables.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UserKeys {
    Table,
    MasterKeyId,
}

#[derive(DeriveIden)]
enum Media {
    Table,
    UserId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // RotateMasterKey and KeyStatus group and filter data keys by master key.
        manager
            .create_index(
                Index::create()
                    .name("idx_user_keys_master")
                    .table(UserKeys::Table)
                    .col(UserKeys::MasterKeyId)
                    .to_owned(),
            )
            .await?;
        // ShredUser and ExportUser read one user's media.
        manager
            .create_index(
                Index::create()
                    .name("idx_media_user")
                    .table(Media::Table)
                    .col(Media::UserId)
                    .col(Media::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_media_user")
                    .table(Media::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_user_keys_master")
                    .table(UserKeys::Table)
                    .to_owned(),
            )
            .await
    }
}
