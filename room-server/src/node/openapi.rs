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
    ),
    modifiers(&Security),
    tags(
        (name = "learner", description = "My page, profile, the Enter button"),
        (name = "corporate", description = "Corporate admins: linked people, seats, attendance"),
        (name = "integration", description = "The portal: records and payment changes"),
        (name = "demo", description = "Demo mode only"),
        (name = "node", description = "The room WebSocket, health, readiness and metrics"),
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

pub(crate) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
