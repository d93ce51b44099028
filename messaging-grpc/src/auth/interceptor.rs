//! tonic interceptor: bearer token → [`Caller`] in the request extensions, plus the
//! role a service requires.

use std::sync::Arc;

use tonic::{Request, Status, service::Interceptor};

use super::{AuthError, Caller, JwtVerifier, Role};

/// Authenticates every call; `required` rejects callers without that role.
#[derive(Clone)]
pub struct AuthInterceptor {
    verifier: Arc<JwtVerifier>,
    required: Option<Role>,
}

impl AuthInterceptor {
    pub fn new(verifier: Arc<JwtVerifier>, required: Option<Role>) -> Self {
        Self { verifier, required }
    }

    fn authenticate<T>(&self, req: &Request<T>) -> Result<Caller, AuthError> {
        let value = req
            .metadata()
            .get("authorization")
            .ok_or(AuthError::Missing)?;
        let value = value.to_str().map_err(|_| AuthError::NotBearer)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(AuthError::NotBearer)?;
        self.verifier.verify(token.trim())
    }
}

impl Interceptor for AuthInterceptor {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        let caller = self
            .authenticate(&req)
            .map_err(|e| Status::unauthenticated(e.to_string()))?;
        if let Some(role) = self.required
            && !caller.has_role(role)
        {
            return Err(Status::permission_denied(format!(
                "this API requires the `{}` role",
                role.as_str()
            )));
        }
        req.extensions_mut().insert(caller);
        Ok(req)
    }
}

/// The caller the interceptor stored. A missing one means the service was mounted
/// without the interceptor: refuse rather than serve unauthenticated.
pub fn caller<T>(req: &Request<T>) -> Result<Caller, Status> {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no authenticated caller"))
}
