//! `MessagingAdmin`: operator calls; the interceptor requires the `admin` role.

use commpro_messaging_api::v1::{self as pb, messaging_admin_server::MessagingAdmin};
use tokio_stream::{Stream, StreamExt as _};
use tonic::{Request, Response, Status};

use super::{call::as_caller, convert};
use crate::{admin::Admin, phone::Masked};

pub struct AdminApi {
    admin: Admin,
}

impl AdminApi {
    pub fn new(admin: Admin) -> Self {
        Self { admin }
    }
}

#[tonic::async_trait]
impl MessagingAdmin for AdminApi {
    type ExportUserStream = std::pin::Pin<
        Box<dyn Stream<Item = Result<pb::ExportUserResponse, Status>> + Send + 'static>,
    >;

    async fn export_user(
        &self,
        req: Request<pb::ExportUserRequest>,
    ) -> Result<Response<Self::ExportUserStream>, Status> {
        as_caller(req, |admin, r| async move {
            let stream = self
                .admin
                .export_user(&admin.user_id, &r.user_id, r.include_media)
                .await?
                .map(|item| item.and_then(convert::export_item).map_err(Status::from));
            Ok(Box::pin(stream) as Self::ExportUserStream)
        })
        .await
    }

    async fn assign_number(
        &self,
        req: Request<pb::AssignNumberRequest>,
    ) -> Result<Response<pb::PhoneNumber>, Status> {
        as_caller(req, |admin, r| async move {
            let row = self
                .admin
                .assign_number(&admin.user_id, &r.number, &r.user_id)
                .await?;
            tracing::info!(admin = %admin.user_id, number = %Masked(&row.e164), user_id = %row.user_id, "number assigned");
            Ok(convert::phone_number(row))
        })
        .await
    }

    async fn release_number(
        &self,
        req: Request<pb::ReleaseNumberRequest>,
    ) -> Result<Response<pb::ReleaseNumberResponse>, Status> {
        as_caller(req, |admin, r| async move {
            let row = self.admin.release_number(&admin.user_id, &r.number).await?;
            tracing::info!(admin = %admin.user_id, number = %Masked(&row.e164), user_id = %row.user_id, "number released");
            Ok(pb::ReleaseNumberResponse {
                released: Some(convert::phone_number(row)),
            })
        })
        .await
    }

    async fn list_unroutable(
        &self,
        req: Request<pb::ListUnroutableRequest>,
    ) -> Result<Response<pb::ListUnroutableResponse>, Status> {
        let limit = match req.into_inner().limit {
            0 => 100,
            n => n.min(1000),
        };
        let rows = self.admin.list_unroutable(u64::from(limit)).await?;
        Ok(Response::new(pb::ListUnroutableResponse {
            messages: rows
                .into_iter()
                .map(|r| pb::UnroutableInbound {
                    message_sid: r.message_sid,
                    from: r.from_number,
                    to: r.to_number,
                    num_media: r.num_media.max(0) as u32,
                    received_at: Some(convert::timestamp(r.received_at)),
                })
                .collect(),
        }))
    }

    async fn list_numbers(
        &self,
        req: Request<pb::ListNumbersRequest>,
    ) -> Result<Response<pb::ListNumbersResponse>, Status> {
        let r = req.into_inner();
        let page = self
            .admin
            .list_numbers(&r.user_id, r.page_size, &r.page_token)
            .await?;
        Ok(Response::new(pb::ListNumbersResponse {
            numbers: page
                .numbers
                .into_iter()
                .map(convert::phone_number)
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn rotate_master_key(
        &self,
        req: Request<pb::RotateMasterKeyRequest>,
    ) -> Result<Response<pb::RotateMasterKeyResponse>, Status> {
        as_caller(req, |admin, r| async move {
            let rotation = self
                .admin
                .rotate_master_key(&admin.user_id, r.max_keys)
                .await?;
            Ok(pb::RotateMasterKeyResponse {
                remaining: rotation
                    .status
                    .remaining()
                    .into_iter()
                    .map(convert::master_key_use)
                    .collect(),
                active_master_key_id: rotation.status.active,
                rewrapped: rotation.rewrapped,
                skipped: rotation.skipped,
            })
        })
        .await
    }

    async fn key_status(
        &self,
        _req: Request<pb::KeyStatusRequest>,
    ) -> Result<Response<pb::KeyStatusResponse>, Status> {
        let status = self.admin.key_status().await?;
        Ok(Response::new(pb::KeyStatusResponse {
            active_master_key_id: status.active,
            master_keys: status
                .master_keys
                .into_iter()
                .map(convert::master_key_use)
                .collect(),
            destroyed_data_keys: status.destroyed,
        }))
    }

    async fn rotate_user_key(
        &self,
        req: Request<pb::RotateUserKeyRequest>,
    ) -> Result<Response<pb::RotateUserKeyResponse>, Status> {
        as_caller(req, |admin, r| async move {
            let version = self
                .admin
                .rotate_user_key(&admin.user_id, &r.user_id)
                .await?;
            Ok(pb::RotateUserKeyResponse {
                user_id: r.user_id,
                key_version: version,
            })
        })
        .await
    }

    async fn shred_user(
        &self,
        req: Request<pb::ShredUserRequest>,
    ) -> Result<Response<pb::ShredUserResponse>, Status> {
        as_caller(req, |admin, r| async move {
            let done = self
                .admin
                .shred_user(&admin.user_id, &r.user_id, &r.confirm_user_id)
                .await?;
            Ok(pb::ShredUserResponse {
                user_id: r.user_id,
                destroyed_key_versions: u32::try_from(done.destroyed_key_versions)
                    .unwrap_or(u32::MAX),
                messages: done.messages,
                media: done.media,
                media_objects_deleted: done.media_objects_deleted,
                released_numbers: done.released_numbers,
            })
        })
        .await
    }

    async fn list_audit_events(
        &self,
        req: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let r = req.into_inner();
        let page = self
            .admin
            .list_audit_events(&r.action, &r.target_user_id, r.page_size, &r.page_token)
            .await?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            events: page.events.into_iter().map(convert::audit_event).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}
