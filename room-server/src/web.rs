//! The web client: its built files from `web_root`, and `index.html` for the paths the client
//! routes itself (`/lectures`, `/room/{id}`, …). Whatever no route of the node takes comes
//! here, so unknown API paths are answered here too — as JSON, like every API refusal.

use crate::refusal::refuse;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower_http::services::{ServeDir, ServeFile};
use tracing::warn;

/// Paths that belong to the node, never to the web client: an unknown one is a JSON 404, not
/// the client's page.
const NODE_PATHS: [&str; 5] = ["/api/", "/ws/", "/healthz", "/readyz", "/metrics"];

/// Vite names every file under `/assets/` by its content hash: a new build makes new names,
/// so browsers may keep these for good.
const ASSETS: &str = "/assets/";

/// What the pages may load: only this node's own scripts, styles and connections (the room
/// socket is same-origin), images inline as data URLs, media from blobs (the check page's
/// camera preview); no plugins, no framing, no foreign form targets.
const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; media-src 'self' blob:; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Longest request target (path and query) the node reads, in bytes: no route, page or asset
/// comes near it, and a longer one is refused before it reaches a handler or the disk.
pub(crate) const MAX_URI_BYTES: usize = 8 * 1024;

/// Refuses a request whose path and query are longer than [`MAX_URI_BYTES`] with 414 (and a
/// JSON body, like every refusal of the node).
pub(crate) async fn refuse_long_uris(request: Request, next: Next) -> Response {
    let length = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if length > MAX_URI_BYTES {
        return refuse(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the path and query are longer than {MAX_URI_BYTES} bytes"),
        );
    }
    next.run(request).await
}

/// The web client's files, ready to serve.
#[derive(Clone, Debug)]
pub(crate) struct WebClient {
    /// Pages: a file when there is one, else `index.html` (the client's own routes).
    pages: ServeDir<ServeFile>,
    /// Hashed assets: a missing one is a 404, never `index.html` that a browser would then
    /// keep for a year as a script.
    assets: ServeDir,
    /// The folder both come from.
    root: PathBuf,
}

impl WebClient {
    /// The build writes a `.br` and a `.gz` beside every text file (web-client/scripts/compress-dist.mjs):
    /// a browser that accepts them gets those (about a third of the size, without compressing
    /// on every request); one that does not gets the file itself.
    pub(crate) fn new(root: &Path) -> Self {
        let index = ServeFile::new(root.join("index.html"))
            .precompressed_br()
            .precompressed_gzip();
        Self {
            pages: ServeDir::new(root)
                .precompressed_br()
                .precompressed_gzip()
                .fallback(index),
            assets: ServeDir::new(root).precompressed_br().precompressed_gzip(),
            root: root.to_owned(),
        }
    }

    /// Whether the client is built (its `index.html` is there).
    fn is_built(&self) -> bool {
        self.root.join("index.html").is_file()
    }

    /// The answer while it is not: where it is looked for, and how to build it.
    fn not_built(&self) -> Response {
        plain(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "The web client is not built: this node serves it from `{}`.\n\
                 Build it with `npm ci && npm run build` in web-client/ (or set web_root).\n\
                 The APIs under /api/ work meanwhile.\n",
                self.root.display()
            ),
        )
    }
}

/// Says at start when there is no web client to serve, and how to build it.
pub(crate) fn warn_if_missing(root: &Path) {
    if !root.join("index.html").is_file() {
        let shown = std::path::absolute(root).unwrap_or_else(|_| root.to_owned());
        warn!(
            web_root = %shown.display(),
            "no web client in web_root: pages answer 503 until it is built \
             (`npm ci && npm run build` in web-client/, or set web_root / --web-root)"
        );
    }
}

/// Every request no route takes.
pub(crate) async fn serve(State(web): State<Arc<WebClient>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    if path == "/api" || path == "/ws" || NODE_PATHS.iter().any(|p| path.starts_with(p)) {
        return refuse(StatusCode::NOT_FOUND, "not_found", "no such endpoint");
    }
    let is_asset = path.starts_with(ASSETS);
    let mut response =
        if climbs_out(&path) || names_too_long(&path) || is_source_map_file(&web.root, &path) {
            plain(StatusCode::NOT_FOUND, "not found")
        } else {
            let served = match is_asset {
                true => web.assets.clone().try_call(request).await,
                false => web.pages.clone().try_call(request).await,
            };
            match served {
                Ok(response) if response.status() == StatusCode::NOT_FOUND && !web.is_built() => {
                    web.not_built()
                }
                Ok(response) => response.map(Body::new),
                Err(e) => {
                    warn!(error = %e, path, "cannot read a web client file");
                    plain(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file")
                }
            }
        };
    let cache = match is_asset {
        true if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED => {
            "public, max-age=31536000, immutable"
        }
        // index.html and everything else: revalidate, so a new build shows at once.
        _ => "no-cache",
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // The same path answers compressed or not depending on Accept-Encoding: a shared cache
    // must keep the two apart.
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    response
}

/// Whether a path tries to leave web_root (`..`, also percent-encoded, or a backslash).
/// ServeDir refuses these too, but would then answer with the fallback page; a plain 404 says
/// what happened.
fn climbs_out(path: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    decoded.contains('\\')
        || decoded.contains('\0')
        || decoded.split('/').any(|segment| segment == "..")
}

/// Whether a path asks for a source map (`*.map`, however encoded or cased). The client is
/// built without them, but one left in web_root (a build made with `--sourcemap`, a copied
/// folder) would hand out the source and the build machine's paths: never served.
fn is_source_map(path: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    decoded
        .trim_end_matches('/')
        .to_ascii_lowercase()
        .ends_with(".map")
}

/// Whether a path names a source map that is in `root`. Only a file that is there is refused:
/// a client route that happens to end in `.map` (`/room/geo.map`, a lecture id may hold dots)
/// still gets the client's page. Called after [`climbs_out`], so the path stays in `root`.
fn is_source_map_file(root: &Path, path: &str) -> bool {
    if !is_source_map(path) {
        return false;
    }
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    root.join(decoded.trim_start_matches('/')).exists()
}

/// Longest file or folder name common file systems hold, in bytes.
const MAX_NAME_BYTES: usize = 255;

/// Whether a segment of the path is longer than any file name can be: no such file, and the
/// disk would answer with an error rather than "not found".
fn names_too_long(path: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    decoded.split('/').any(|name| name.len() > MAX_NAME_BYTES)
}

fn plain(status: StatusCode, text: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.into(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_longer_than_a_file_system_holds_are_recognised() {
        assert!(names_too_long(&format!("/assets/{}.js", "a".repeat(300))));
        assert!(names_too_long(&format!("/{}", "%41".repeat(256))));
        assert!(!names_too_long(&format!("/room/{}", "a".repeat(200))));
    }

    #[test]
    fn source_maps_are_recognised_however_encoded() {
        for path in [
            "/assets/app-1a2b.js.map",
            "/assets/app.css.MAP",
            "/assets/app.js%2Emap",
            "/index.js.map/",
        ] {
            assert!(is_source_map(path), "{path}");
        }
        for path in ["/", "/assets/app-1a2b.js", "/room/map", "/room/a.mapx"] {
            assert!(!is_source_map(path), "{path}");
        }
    }

    #[test]
    fn paths_that_climb_out_are_recognised_however_encoded() {
        for path in [
            "/../Cargo.toml",
            "/assets/../../Cargo.toml",
            "/%2e%2e/Cargo.toml",
            "/%2E%2E%2FCargo.toml",
            "/..%2fCargo.toml",
            "/..%5cCargo.toml",
            "/a%00b",
        ] {
            assert!(climbs_out(path), "{path}");
        }
        for path in [
            "/",
            "/room/rust.101",
            "/assets/app-1a2b.js",
            "/a..b",
            "/%zz",
        ] {
            assert!(!climbs_out(path), "{path}");
        }
    }
}
