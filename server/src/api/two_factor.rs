//! Two-factor log-in (TOTP) of the current user: `/api/users/me/two-factor*`,
//! and the admin's removal of a user's: `DELETE /api/admin/users/{id}/two-factor`.
//!
//! Enrolment is two steps: `POST` makes a secret (shown as text, as an
//! `otpauth://` URL and as a QR code drawn by this server), `POST .../confirm`
//! with the first code turns it on and answers the ten recovery codes, once.
//! From then on `POST /api/auth/token` needs `two_factor_code`.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use storage::model::{RecoveryCodes, TwoFactorCode, TwoFactorEnrolment, TwoFactorStatus};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::accounts::totp;
use crate::auth::{AdminUser, AuthUser, ClientIp};
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status, enrol, turn_off))
        .routes(routes!(qr_code))
        .routes(routes!(confirm))
        .routes(routes!(admin_remove))
}

const QR_PATH: &str = "/api/users/me/two-factor/qr.svg";

async fn username(state: &AppState, user_id: u64) -> ApiResult<String> {
    state
        .catalog(move |c| c.user(user_id))
        .await?
        .map(|u| u.username)
        .ok_or_else(|| ApiError::Unauthorized("this account no longer exists".into()))
}

#[utoipa::path(
    get,
    path = "/api/users/me/two-factor",
    operation_id = "getTwoFactor",
    tag = "users",
    summary = "Whether two-factor log-in is on",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::TwoFactorStatus), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody))
)]
async fn status(State(state): State<AppState>, user: AuthUser) -> ApiResult<Json<TwoFactorStatus>> {
    let id = user.user_id;
    let (record, policy) = state
        .catalog(move |c| Ok((c.totp(id)?, c.account_policy())))
        .await?;
    Ok(Json(TwoFactorStatus {
        enabled: record.as_ref().is_some_and(|r| r.confirmed),
        pending: record.as_ref().is_some_and(|r| !r.confirmed),
        recovery_codes_left: record
            .as_ref()
            .filter(|r| r.confirmed)
            .map_or(0, |r| u32::try_from(r.recovery.len()).unwrap_or(u32::MAX)),
        required: policy.require_two_factor,
    }))
}

#[utoipa::path(
    post,
    path = "/api/users/me/two-factor",
    operation_id = "enrolTwoFactor",
    tag = "users",
    summary = "Start two-factor enrolment: a new secret and its QR code",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::TwoFactorEnrolment), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 403, description = "Not allowed", body = storage::model::ErrorBody), (status = 409, description = "Two-factor log-in is on already", body = storage::model::ErrorBody))
)]
async fn enrol(State(state): State<AppState>, user: AuthUser) -> ApiResult<Response> {
    let id = user.user_id;
    let name = username(&state, id).await?;
    let secret = totp::new_secret();
    let t = totp::totp(&secret, &name)?;
    let now = state.clock.now_ms();
    if !state
        .catalog(move |c| c.begin_totp(id, &secret, now))
        .await?
    {
        return Err(ApiError::Conflict(
            "two-factor log-in is on already; turn it off first to enrol a new device".into(),
        ));
    }
    let body = TwoFactorEnrolment {
        secret: t.get_secret_base32(),
        otpauth_url: t.get_url(),
        qr_svg_path: QR_PATH.into(),
    };
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[utoipa::path(
    get,
    path = "/api/users/me/two-factor/qr.svg",
    operation_id = "getTwoFactorQrCode",
    tag = "users",
    summary = "The QR code of the pending enrolment, as SVG",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The QR code", content_type = "image/svg+xml"), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 409, description = "No enrolment is pending", body = storage::model::ErrorBody))
)]
async fn qr_code(State(state): State<AppState>, user: AuthUser) -> ApiResult<Response> {
    let id = user.user_id;
    let name = username(&state, id).await?;
    let record = state.catalog(move |c| c.totp(id)).await?;
    let Some(record) = record.filter(|r| !r.confirmed) else {
        return Err(ApiError::Conflict(
            "no two-factor enrolment is pending; start one first".into(),
        ));
    };
    let svg = totp::qr_svg(&totp::totp(&record.secret, &name)?.get_url())?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-store"),
            // Drawn by us, but an SVG is a document: nothing in it may run.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        svg,
    )
        .into_response())
}

#[utoipa::path(
    post,
    path = "/api/users/me/two-factor/confirm",
    operation_id = "confirmTwoFactor",
    tag = "users",
    summary = "Turn two-factor log-in on with the first code; answers the recovery codes, once",
    request_body = storage::model::TwoFactorCode,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = storage::model::RecoveryCodes), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 409, description = "No enrolment is pending", body = storage::model::ErrorBody), (status = 422, description = "Wrong code", body = storage::model::ErrorBody), (status = 429, description = "Too many attempts; see Retry-After", body = storage::model::ErrorBody))
)]
async fn confirm(
    State(state): State<AppState>,
    user: AuthUser,
    ClientIp(ip): ClientIp,
    Json(req): Json<TwoFactorCode>,
) -> ApiResult<Response> {
    let id = user.user_id;
    state.limits.check_code(id, ip)?;
    let name = username(&state, id).await?;
    let record = state.catalog(move |c| c.totp(id)).await?;
    let Some(record) = record.filter(|r| !r.confirmed) else {
        return Err(ApiError::Conflict(
            "no two-factor enrolment is pending; start one first".into(),
        ));
    };
    let t = totp::totp(&record.secret, &name)?;
    let Some(step) = totp::matching_step(&t, &req.code, state.clock.now_ms()) else {
        return Err(ApiError::Invalid(
            "code: wrong code; type the six digits the app shows now (check the device's clock)"
                .into(),
        ));
    };
    let (codes, hashes) = totp::recovery_codes();
    if !state
        .catalog(move |c| c.confirm_totp(id, step, hashes))
        .await?
    {
        return Err(ApiError::Conflict("two-factor log-in is on already".into()));
    }
    tracing::info!(user_id = id, "two-factor log-in turned on");
    let mut response = Json(RecoveryCodes {
        recovery_codes: codes,
    })
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[utoipa::path(
    delete,
    path = "/api/users/me/two-factor",
    operation_id = "turnOffTwoFactor",
    tag = "users",
    summary = "Turn two-factor log-in off (with a current code or a recovery code)",
    request_body = storage::model::TwoFactorCode,
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Off"), (status = 400, description = "Malformed request", body = storage::model::ErrorBody), (status = 401, description = "Not logged in, the token is invalid, or a wrong code", body = storage::model::ErrorBody), (status = 409, description = "Two-factor log-in is not on", body = storage::model::ErrorBody), (status = 422, description = "Invalid field value", body = storage::model::ErrorBody), (status = 429, description = "Too many attempts; see Retry-After", body = storage::model::ErrorBody))
)]
async fn turn_off(
    State(state): State<AppState>,
    user: AuthUser,
    ClientIp(ip): ClientIp,
    Json(req): Json<TwoFactorCode>,
) -> ApiResult<StatusCode> {
    let id = user.user_id;
    if !state.catalog.has_two_factor(id) {
        // A pending enrolment is simply dropped.
        return if state.catalog(move |c| c.remove_totp(id)).await? {
            Ok(StatusCode::NO_CONTENT)
        } else {
            Err(ApiError::Conflict("two-factor log-in is not on".into()))
        };
    }
    let name = username(&state, id).await?;
    totp::verify(&state, id, &name, Some(&req.code), ip).await?;
    state.catalog(move |c| c.remove_totp(id)).await?;
    tracing::info!(user_id = id, "two-factor log-in turned off");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/api/admin/users/{id}/two-factor",
    operation_id = "removeUserTwoFactor",
    tag = "admin",
    summary = "Remove an account's two-factor log-in, e.g. a lost phone (admin)",
    params(("id" = u64, Path, description = "User id")),
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "Removed"), (status = 401, description = "Not logged in, or the token is invalid", body = storage::model::ErrorBody), (status = 403, description = "Not allowed", body = storage::model::ErrorBody), (status = 404, description = "No such user, or two-factor log-in is not on", body = storage::model::ErrorBody))
)]
async fn admin_remove(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<u64>,
) -> ApiResult<StatusCode> {
    if state.catalog(move |c| c.user(id)).await?.is_none() {
        return Err(ApiError::NotFound("no such user".into()));
    }
    if state.catalog(move |c| c.remove_totp(id)).await? {
        tracing::info!(
            user_id = id,
            by = admin.user_id,
            "two-factor log-in removed by the admin"
        );
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(
            "two-factor log-in is not on for this account".into(),
        ))
    }
}
