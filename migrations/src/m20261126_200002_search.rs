//! The blind index for SearchMessages: one row per (user, keyed hash of a word,
//! message). No word is stored in clear; the hashes are keyed per user, so one
//! user's rows say nothing about another's.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SearchTerms {
    Table,
    UserId,
    Term,
    MessageId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The primary key is the search path: a user's rows for a term, range-scanned.
        manager
            .create_table(
                Table::create()
                    .table(SearchTerms::Table)
                    .col(string(SearchTerms::UserId))
                    .col(blob(SearchTerms::Term))
                    .col(string(SearchTerms::MessageId))
                    .primary_key(
                        Index::create()
                            .col(SearchTerms::UserId)
                            .col(SearchTerms::Term)
                            .col(SearchTerms::MessageId),
                    )
                    .to_owned(),
            )
            .await?;
        // Deleting a message removes its terms by message id.
        manager
            .create_index(
                Index::create()
                    .name("idx_search_terms_message")
                    .table(SearchTerms::Table)
                    .col(SearchTerms::MessageId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SearchTerms::Table).to_owned())
            .await
    }
}
