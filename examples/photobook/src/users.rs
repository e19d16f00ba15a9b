//! The demo's resource owners, with passwords checked in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tessera::Subject;

/// The seeded users and their passwords (DEMO-CONTRACT.md, "Seeded data").
pub const SEEDED_USERS: [(&str, &str); 2] =
    [("alice", "alice-password-1"), ("bob", "bob-password-1")];

/// The users who can sign in. Only password hashes are kept.
///
/// SHA-256 with the username as salt is enough for a demo whose passwords
/// are public anyway; a real provider uses a slow password hash (Argon2id).
#[derive(Clone)]
pub struct Users {
    users: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.users.iter().map(|(name, _)| name))
            .finish()
    }
}

fn hash(username: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"photobook-demo-password\0");
    h.update(username.as_bytes());
    h.update(b"\0");
    h.update(password.as_bytes());
    h.finalize().into()
}

impl Users {
    /// Alice and Bob.
    pub fn seeded() -> Self {
        Self {
            users: SEEDED_USERS
                .iter()
                .map(|(u, p)| ((*u).to_owned(), hash(u, p)))
                .collect(),
        }
    }

    /// The user if `password` is theirs. The hash comparison is constant
    /// time, and an unknown username costs the same work as a known one.
    pub fn verify(&self, username: &str, password: &str) -> Option<Subject> {
        let presented = hash(username, password);
        let mut found = None;
        for (name, stored) in &self.users {
            let same_name = name.as_bytes().ct_eq(username.as_bytes());
            let same_hash = stored.ct_eq(&presented);
            if bool::from(same_name & same_hash) {
                found = Some(Subject::new(name.clone()));
            }
        }
        found
    }

    /// Whether a user by this name exists.
    pub fn exists(&self, username: &str) -> bool {
        self.users.iter().any(|(name, _)| name == username)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_passwords_verify() {
        let users = Users::seeded();
        assert_eq!(
            users.verify("alice", "alice-password-1"),
            Some(Subject::new("alice"))
        );
        assert_eq!(
            users.verify("bob", "bob-password-1"),
            Some(Subject::new("bob"))
        );
        assert_eq!(users.verify("alice", "bob-password-1"), None);
        assert_eq!(users.verify("bob", "alice-password-1"), None);
        assert_eq!(users.verify("alice", "alice-password-1 "), None);
        assert_eq!(users.verify("mallory", "x"), None);
        assert_eq!(users.verify("", ""), None);
        assert!(!format!("{users:?}").contains("password"));
    }
}
