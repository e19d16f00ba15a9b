//! Client ID metadata documents in the demo
//! (draft-ietf-oauth-client-id-metadata-document): off by default, so the
//! DEMO-CONTRACT holds as written; `--client-metadata-documents` turns them
//! on (an MCP client may then use the `https` URL of its metadata document
//! as its `client_id`, without registering), and
//! `--dangerous-client-metadata-documents-over-loopback-http` also accepts
//! documents served over plain HTTP from this machine, for tests only.

use std::sync::Arc;

use tessera::{ClientMetadataPolicy, ServerBuilder};
use tessera_client_metadata::{BuildError, FetcherOptions, HttpFetcher};

use crate::config::Args;

/// `builder` with client ID metadata documents on if `args` ask for them.
pub fn enable(builder: ServerBuilder, args: &Args) -> Result<ServerBuilder, BuildError> {
    if !args.client_metadata_documents {
        return Ok(builder);
    }
    let mut policy = ClientMetadataPolicy::default();
    let mut options = FetcherOptions::default();
    if args.dangerous_client_metadata_documents_over_loopback_http {
        tracing::warn!(
            "client ID metadata documents are fetched over plain HTTP and from loopback addresses: for tests only"
        );
        policy = policy.dangerous_allow_http();
        options = options.dangerous_allow_http_and_loopback();
    }
    Ok(builder
        .enable_client_id_metadata_documents(policy, Arc::new(HttpFetcher::with_options(options)?)))
}
