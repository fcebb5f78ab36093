//! The node's HTTP contract (the gate's APIs, the sockets, health), generated from the
//! handlers' annotations and served at
//! `/api/openapi.json`.

use crate::gate::{corporate, integration, learner};
use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Live lecture room — entry gate",
        description = "Who may enter which lecture and when. Learners and corporate admins send the portal's identity token (`Authorization: Bearer`); the portal's integration API sends `X-Api-Key`. Every error has a JSON body with a stable `error` code. The room WebSocket itself is described in docs/protocol.md.",
    ),
    paths(
        learner::my_lectures, learner::get_profile, learner::put_profile, learner::ticket,
        learner::sign_in_options,
        learner::demo_users, learner::demo_sign_in,
        corporate::members, corporate::purchases, corporate::allocate, corporate::take_back, corporate::attendance,
        integration::put_lecture, integration::cancel_lecture, integration::put_account, integration::put_profile,
        integration::put_link, integration::delete_link, integration::put_purchase, integration::set_purchase_status,
        integration::put_allocation, integration::delete_allocation,
        crate::node::routes::health, crate::node::routes::ready, crate::node::routes::metrics, crate::node::routes::drain, crate::node::routes::room_socket,
        crate::check::socket, crate::check::download, crate::media::relay::socket,
        integration::put_archive,
        crate::archive::http::archive, crate::archive::http::my_archives, crate::archive::http::media,
    ),
    modifiers(&Security, &Limits),
    tags(
        (name = "learner", description = "My page, profile, the Enter button"),
        (name = "corporate", description = "Corporate admins: linked people, seats, attendance"),
        (name = "integration", description = "The portal: records and payment changes"),
        (name = "demo", description = "Demo mode only"),
        (name = "node", description = "The room WebSocket, health, readiness and metrics"),
        (name = "archive", description = "The archive room: a finished lecture's recording, chat and reactions, through short-lived signed media URLs"),
        (name = "check", description = "The connection check learners run before a lecture: a ping socket and a download"),
    )
)]
pub(crate) struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "portal_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))),
        );
    }
}

/// The refusals every endpoint can answer before its handler runs: 414 for a path and query
/// longer than [`crate::web::MAX_URI_BYTES`], and 413 for a body larger than the gate's limit
/// on every operation that takes one.
struct Limits;

impl Modify for Limits {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let refusal = |description: String| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        let too_long = refusal(format!(
            "`uri_too_long`: the path and query are longer than {} bytes",
            crate::web::MAX_URI_BYTES
        ));
        let too_large = refusal(format!(
            "`payload_too_large`: the body is larger than {} bytes",
            crate::gate::http::MAX_JSON_BODY
        ));
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let responses = &mut op.responses.responses;
                responses
                    .entry("414".into())
                    .or_insert_with(|| too_long.clone().into());
                if op.request_body.is_some() {
                    responses
                        .entry("413".into())
                        .or_insert_with(|| too_large.clone().into());
                }
            }
        }
    }
}

pub(crate) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
