//! tonic interceptor: bearer token → [`Caller`] in the request extensions, plus the
//! role a service requires.

use std::sync::Arc;

use tonic::{Request, Status, service::Interceptor};

use super::{AuthError, Caller, JwtVerifier, Role};

/// Longest bearer token looked at.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Authenticates every call; `required` rejects callers without that role.
#[derive(Clone)]
pub struct AuthInterceptor {
    verifier: Arc<JwtVerifier>,
    required: Option<Role>,
    /// The gateway's own key (JWT_GATEWAY_PUBLIC_KEY_FILE), on the ingest API only:
    /// its tokens grant the `gateway` role and nothing else, whatever they claim, so
    /// the internet-facing gateway holds no key that can mint user or admin tokens.
    service: Option<Arc<JwtVerifier>>,
}

impl AuthInterceptor {
    pub fn new(verifier: Arc<JwtVerifier>, required: Option<Role>) -> Self {
        Self {
            verifier,
            required,
            service: None,
        }
    }

    /// Also accepts tokens of the gateway's own key, as the `gateway` role only.
    pub fn with_service_key(mut self, service: Option<Arc<JwtVerifier>>) -> Self {
        self.service = service;
        self
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
        let token = token.trim();
        // Real tokens are a few hundred bytes; a huge one is refused before any parsing.
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLarge);
        }
        match (self.verifier.verify(token), &self.service) {
            (Ok(caller), _) => Ok(caller),
            (Err(first), Some(service)) => service
                .verify(token)
                .map(|caller| Caller {
                    roles: vec![Role::Gateway],
                    ..caller
                })
                // A token neither key accepts: the main key's reason is the useful one.
                .map_err(|_| first),
            (Err(e), None) => Err(e),
        }
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
