//! The protected API: `GET {issuer}/api/photos` with the access token.

use std::io::Write;

use oauth2::AccessToken;
use serde::Deserialize;
use url::Url;

use crate::clean;
use crate::error::{Error, describe_reqwest};

/// The photos API's answer (DEMO-CONTRACT "Protected API").
#[derive(Debug, Clone, Deserialize)]
pub struct Photos {
    /// Whose photos these are.
    pub owner: String,
    /// The photos.
    pub photos: Vec<Photo>,
}

/// One photo.
#[derive(Debug, Clone, Deserialize)]
pub struct Photo {
    /// Its identifier (a string or a number).
    pub id: serde_json::Value,
    /// Its title.
    pub title: String,
}

impl Photo {
    /// The identifier as printed: a string as is, anything else as JSON.
    pub fn id_text(&self) -> String {
        match &self.id {
            serde_json::Value::String(s) => clean(s),
            other => clean(&other.to_string()),
        }
    }
}

impl Photos {
    /// Writes the owner and each photo's id and title, one per line.
    pub fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        let owner = clean(&self.owner);
        match self.photos.len() {
            0 => return writeln!(out, "{owner} has no photos."),
            1 => writeln!(out, "{owner} has 1 photo:")?,
            n => writeln!(out, "{owner} has {n} photos:")?,
        }
        let ids: Vec<String> = self.photos.iter().map(Photo::id_text).collect();
        let width = ids.iter().map(|id| id.chars().count()).max().unwrap_or(0);
        for (id, photo) in ids.iter().zip(&self.photos) {
            writeln!(out, "  {id:<width$}  {}", clean(&photo.title))?;
        }
        Ok(())
    }
}

/// Reads the token owner's photos.
pub async fn fetch_photos(
    http: &reqwest::Client,
    url: &Url,
    token: &AccessToken,
) -> Result<Photos, Error> {
    let response = http
        .get(url.clone())
        .bearer_auth(token.secret())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| Error::Unreachable {
            url: url.to_string(),
            why: describe_reqwest(&e),
        })?;
    let status = response.status();
    if !status.is_success() {
        let challenge = response
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(|v| format!(" ({})", clean(v)))
            .unwrap_or_default();
        return Err(Error::Api(format!(
            "GET {url} answered {status}{challenge}"
        )));
    }
    let body = crate::error::read_capped(response)
        .await
        .map_err(|why| Error::Unreachable {
            url: url.to_string(),
            why,
        })?;
    serde_json::from_slice(&body)
        .map_err(|e| Error::BadResponse(format!("GET {url}: not a list of photos ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photos_print_one_per_line() {
        let photos: Photos = serde_json::from_str(
            r#"{"owner":"alice","photos":[{"id":"p1","title":"Lake"},{"id":12,"title":"Bay\u001b[31m"}]}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        photos.write_to(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "alice has 2 photos:\n  p1  Lake\n  12  Bay?[31m\n"
        );
    }
}
