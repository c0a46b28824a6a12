//! `/v1/domains`: sending domains and the DKIM records to publish.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use tidings_core::domain_proof::VerificationView;
use tidings_core::domains::{DomainInput, DomainView};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Auth;
use crate::error::{ApiError, ErrorBody};
use crate::json::{ApiJson, ApiPath};
use crate::openapi::{JsonBodyErrors, KeyErrors, NotFound};
use crate::views::List;
use crate::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, remove))
        .routes(routes!(verify))
}

/// Check the domain's DKIM record (`dns`) in DNS. Once it is found the
/// domain is verified (where the operator asks for proof, mail from it is
/// accepted only then). The answer says what this check found either way.
#[utoipa::path(
    post, path = "/v1/domains/{domain}/verify", operation_id = "verify_domain", tag = "domains",
    security(("bearer" = [])),
    params(("domain" = String, Path)),
    responses((status = 200, description = "What the check found", body = VerificationView),
        NotFound, KeyErrors)
)]
async fn verify(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiPath(domain): ApiPath<String>,
) -> Result<Json<VerificationView>, ApiError> {
    Ok(Json(st.app.verify_domain(account, &domain).await?))
}

/// Add a sending domain: a DKIM key is made for it; publish the TXT record
/// shown.
#[utoipa::path(
    post, path = "/v1/domains", operation_id = "add_domain", tag = "domains",
    security(("bearer" = [])),
    request_body = DomainInput,
    responses((status = 201, description = "Added, with the DNS record to publish", body = DomainView),
        (status = 409, description = "The domain is already added, to this account or another (`conflict`)", body = ErrorBody),
        JsonBodyErrors, KeyErrors)
)]
async fn create(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiJson(input): ApiJson<DomainInput>,
) -> Result<(StatusCode, Json<DomainView>), ApiError> {
    let d = st.app.add_domain(account, input).await?;
    Ok((StatusCode::CREATED, Json(d)))
}

/// The account's sending domains.
#[utoipa::path(
    get, path = "/v1/domains", operation_id = "list_domains", tag = "domains",
    security(("bearer" = [])),
    responses((status = 200, description = "Every sending domain", body = List<DomainView>), KeyErrors)
)]
async fn list(
    State(st): State<AppState>,
    Auth(account): Auth,
) -> Result<Json<List<DomainView>>, ApiError> {
    Ok(Json(List {
        data: st.app.list_domains(account).await?,
    }))
}

/// One sending domain.
#[utoipa::path(
    get, path = "/v1/domains/{domain}", operation_id = "get_domain", tag = "domains",
    security(("bearer" = [])),
    params(("domain" = String, Path)),
    responses((status = 200, description = "The domain", body = DomainView), NotFound, KeyErrors)
)]
async fn read(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiPath(domain): ApiPath<String>,
) -> Result<Json<DomainView>, ApiError> {
    let all = st.app.list_domains(account).await?;
    let d = all
        .into_iter()
        .find(|d| d.domain.eq_ignore_ascii_case(&domain))
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(d))
}

/// Remove a sending domain and its key.
#[utoipa::path(
    delete, path = "/v1/domains/{domain}", operation_id = "remove_domain", tag = "domains",
    security(("bearer" = [])),
    params(("domain" = String, Path)),
    responses((status = 204, description = "Removed"), NotFound, KeyErrors)
)]
async fn remove(
    State(st): State<AppState>,
    Auth(account): Auth,
    ApiPath(domain): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    st.app.remove_domain(account, &domain).await?;
    Ok(StatusCode::NO_CONTENT)
}
