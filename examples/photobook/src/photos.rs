//! The photos behind `GET /api/photos`.

use serde::Serialize;
use tessera::AccessToken;

/// The scope `GET /api/photos` requires.
pub const PHOTOS_READ: &str = "photos.read";

/// One photo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Photo {
    /// Its id.
    pub id: &'static str,
    /// Its title.
    pub title: &'static str,
    /// The user it belongs to.
    pub owner: &'static str,
}

/// The answer of `GET /api/photos`: `{"owner": ..., "photos": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhotoList {
    /// The user the token acts for, or the client for a client-credentials token.
    pub owner: String,
    /// The photos visible to it.
    pub photos: Vec<Photo>,
}

const fn photo(id: &'static str, owner: &'static str, title: &'static str) -> Photo {
    Photo { id, title, owner }
}

/// Every seeded photo: alice has 3, bob 2.
pub const PHOTOS: [Photo; 5] = [
    photo("alice-1", "alice", "Sunrise over the harbour"),
    photo("alice-2", "alice", "Grandma's 90th birthday"),
    photo("alice-3", "alice", "Hiking the ridge trail"),
    photo("bob-1", "bob", "First day at the new office"),
    photo("bob-2", "bob", "Street food night market"),
];

/// The photos a validated access token may see: its owner's, or for a
/// client acting on its own behalf (client credentials) every user's.
pub fn photos_for(token: &AccessToken) -> PhotoList {
    match &token.subject {
        Some(user) => PhotoList {
            owner: user.as_str().to_owned(),
            photos: PHOTOS
                .iter()
                .filter(|p| p.owner == user.as_str())
                .cloned()
                .collect(),
        },
        None => PhotoList {
            owner: token.client_id.as_str().to_owned(),
            photos: PHOTOS.to_vec(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(PHOTOS.iter().filter(|p| p.owner == "alice").count(), 3);
        assert_eq!(PHOTOS.iter().filter(|p| p.owner == "bob").count(), 2);
    }
}
