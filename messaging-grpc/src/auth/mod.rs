//! Who is calling: JWT verification and the tonic interceptor that enforces it.

mod interceptor;
mod jwt;

pub use interceptor::{AuthInterceptor, caller};
pub use jwt::{AuthError, Claims, JwtIssuer, JwtVerifier, VerifierKey};

/// A role a token can grant through its `roles` claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Operators: MessagingAdmin.
    Admin,
    /// The webhook gateway: MessagingIngest.
    Gateway,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Gateway => "gateway",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "gateway" => Some(Self::Gateway),
            _ => None,
        }
    }
}

/// The authenticated caller, put into request extensions by [`AuthInterceptor`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// JWT `sub`: the CommPro user id every query is scoped to.
    pub user_id: String,
    pub roles: Vec<Role>,
    /// The token's `exp` (Unix seconds): long-lived calls (WatchEvents) end then.
    pub expires_at: u64,
}

impl Caller {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}
