//! What the ingest path keeps aside is dropped after its time: inbound messages to a
//! number nobody owns (`unroutable_inbound`, kept for operators to look at) after 30
//! days (`ingest::status`, the pruning job that also drops old parked callbacks).

use chrono::Duration;
use messaging_grpc::store::{self, ingest};
use sea_orm::{ConnectionTrait as _, Statement};

use crate::message_batch::{count, open};

crate::backend_tests! {
    async fn unroutable_inbound_older_than_its_retention_is_pruned_and_newer_kept(backend: Backend) {
        let t = open(&backend).await;
        let store = &t.store;
        for sid in ["SMold", "SMnew"] {
            ingest::record_unroutable_any(store.conn(), sid, "AC1", "+14155550100", "+15005550006", 0)
                .await
                .unwrap();
        }
        let retention = messaging_grpc::ingest::UNROUTABLE_RETENTION;
        let aged = store::now() - retention - Duration::days(1);
        let sql = "UPDATE unroutable_inbound SET received_at = $1 WHERE message_sid = 'SMold'";
        let sql = if store.backend() == sea_orm::DatabaseBackend::Sqlite { sql.replace("$1", "?") } else { sql.to_owned() };
        store
            .conn()
            .execute_raw(Statement::from_sql_and_values(store.backend(), sql, [aged.into()]))
            .await
            .unwrap();
        // What the pruning job passes (`ingest::status`).
        let pruned = ingest::prune_unroutable_any(store.conn(), store::now() - retention).await.unwrap();
        assert_eq!(pruned, 1);
        let left: Vec<String> = ingest::unroutable_any(store.conn(), 10).await.unwrap().into_iter().map(|r| r.message_sid).collect();
        assert_eq!(left, ["SMnew"]);
        assert_eq!(count(store, "SELECT COUNT(*) FROM unroutable_inbound").await, 1);
    }
}
