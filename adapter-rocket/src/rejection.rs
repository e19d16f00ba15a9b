//! Answers decided while a guard failed. A failing guard can only hand rocket
//! a status, and rocket's catcher then knows nothing of the `WWW-Authenticate`
//! header the core chose. So the guard leaves the core's full response in the
//! request-local cache, and the fairing's response hook puts it in place of
//! the catcher's answer.

use std::sync::Mutex;

use rocket::{Request, Response};
use tessera::HttpResponse;

use crate::response::TesseraResponse;

/// The core's answer for a failed guard, not yet sent.
#[derive(Default)]
struct Pending(Mutex<Option<HttpResponse>>);

fn slot<'r>(req: &'r Request<'_>) -> &'r Mutex<Option<HttpResponse>> {
    &req.local_cache(Pending::default).0
}

/// Remembers the answer for a guard that is about to fail.
pub(crate) fn remember(req: &Request<'_>, response: HttpResponse) {
    *slot(req).lock().unwrap_or_else(|p| p.into_inner()) = Some(response);
}

/// Forgets it: the route answered with it itself.
pub(crate) fn forget(req: &Request<'_>) {
    slot(req).lock().unwrap_or_else(|p| p.into_inner()).take();
}

/// In the response hook: if a guard failed and rocket answered with a catcher
/// of that same status, the core's answer replaces the catcher's.
pub(crate) fn apply<'r>(req: &'r Request<'_>, res: &mut Response<'r>) {
    let pending = slot(req).lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(pending) = pending
        && res.status().code == pending.status
    {
        res.merge(TesseraResponse(pending).into_rocket());
    }
}
