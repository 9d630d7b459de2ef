//! `GET /`: platform × OS version for each image type; each cell is the latest build of
//! that combination, its milestone as a progress bar, its status in words and colour,
//! and a link to it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use buildstate_core::Build;
use buildstate_store::BuildFilter;

use super::html::{self, esc, seg};
use super::session::Viewer;
use crate::AppState;

/// The newest builds the matrix is drawn from: the latest of every cell is among them
/// unless a fleet has more combinations than this, whose oldest cells then show empty.
const BUILDS: usize = 1000;

/// The latest build of each (image type, platform, OS) among `builds` (newest first).
pub fn latest(builds: &[Build]) -> BTreeMap<&str, BTreeMap<(&str, &str), &Build>> {
    let mut by_image: BTreeMap<&str, BTreeMap<(&str, &str), &Build>> = BTreeMap::new();
    for b in builds {
        by_image
            .entry(b.image_type.as_str())
            .or_default()
            .entry((b.platform.as_str(), b.os.as_str()))
            .or_insert(b);
    }
    by_image
}

pub fn render(builds: &[Build]) -> String {
    let by_image = latest(builds);
    if by_image.is_empty() {
        return r#"<p>No builds yet: <code>buildstate build create</code> makes one.</p>"#.to_owned();
    }
    let mut out = String::new();
    for (image, cells) in &by_image {
        let platforms: BTreeSet<&str> = cells.keys().map(|k| k.0).collect();
        let oses: BTreeSet<&str> = cells.keys().map(|k| k.1).collect();
        let _ = write!(
            out,
            r#"<section class="matrix"><h2>Image type <code>{img}</code></h2><table class="matrix" data-image="{img}"><caption>Latest build per platform and OS version ({img})</caption><thead><tr><th scope="col">Platform</th>"#,
            img = esc(image)
        );
        for os in &oses {
            let _ = write!(out, r#"<th scope="col">{}</th>"#, esc(os));
        }
        out.push_str("</tr></thead><tbody>");
        for p in &platforms {
            let _ = write!(out, r#"<tr><th scope="row">{}</th>"#, esc(p));
            for os in &oses {
                match cells.get(&(*p, *os)) {
                    Some(b) => {
                        let _ = write!(
                            out,
                            r#"<td class="cell status-{s}" data-build="{n}" data-state="{st}" data-status="{s}"><a href="/builds/{link}">{num}</a><br>{bar}<br>{status}</td>"#,
                            s = b.status.as_str(),
                            n = esc(b.number.as_str()),
                            st = b.state.get(),
                            link = seg(b.number.as_str()),
                            num = esc(b.number.as_str()),
                            bar = html::progress(b),
                            status = html::status(b.status, b.needs_intervention),
                        );
                    }
                    None => out.push_str(r#"<td class="cell empty"><span class="none">no build</span></td>"#),
                }
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table></section>");
    }
    out
}

pub async fn show(State(state): State<AppState>, viewer: Viewer) -> Response {
    let filter = BuildFilter { limit: Some(BUILDS), ..BuildFilter::default() };
    match state.store.list_builds(&filter).await {
        Ok(builds) => html::page(StatusCode::OK, "Build matrix", "/", &viewer, None, &render(&builds)),
        Err(e) => {
            let e = crate::error::ApiError::from(e);
            html::message(e.status, &viewer, "The store cannot be read", &e.message)
        }
    }
}
