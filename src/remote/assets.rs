//! The page's files, built into the binary: the page works offline on a LAN
//! (no CDN, no fonts, no framework).

use super::server::Response;

pub const INDEX_HTML: &str = include_str!("page/index.html");
pub const APP_JS: &str = include_str!("page/app.js");
pub const APP_CSS: &str = include_str!("page/app.css");
/// Shown once after pairing; it moves on to the page by itself.
pub const PAIRED: &str = include_str!("page/paired.html");

/// Only scripts and styles of our own: an injected `<script>` would not run.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The page, with this pairing's CSRF value for its requests.
pub fn page(csrf: &str) -> Response {
    Response::new(
        200,
        "text/html; charset=utf-8",
        INDEX_HTML.replace("{{CSRF}}", csrf),
    )
    .with("Content-Security-Policy", CSP)
}
