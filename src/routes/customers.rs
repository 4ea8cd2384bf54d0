//! `/api/v1/customers` and their contacts and sites, scoped to the caller (see
//! `db::customers`): what a caller may not see is a 404, what they may see but not change a 403.

use super::{PageOf, PageQuery};
use crate::auth::Caller;
use crate::db::{self, customers as repo, entities};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;
use actix_web::{HttpResponse, get, patch, post, web};
use fieldproof_domain::customer::{Fen, Name, Seniority};
use fieldproof_domain::geo::{Crs, SitePoint};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_customers)
        .service(create_customer)
        .service(get_customer)
        .service(patch_customer)
        .service(share_customer)
        .service(list_contacts)
        .service(create_contact)
        .service(list_sites)
        .service(create_site);
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CustomerView {
    pub id: String,
    pub name: String,
    pub industry: String,
    /// Estimated annual purchase, fen (1/100 CNY).
    pub annual_purchase_fen: i64,
    pub tags: Vec<String>,
    pub owner_id: String,
    pub team_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<entities::customer::Model> for CustomerView {
    fn from(c: entities::customer::Model) -> Self {
        CustomerView {
            tags: serde_json::from_value(c.tags).unwrap_or_default(),
            id: c.id,
            name: c.name,
            industry: c.industry,
            annual_purchase_fen: c.annual_purchase_fen,
            owner_id: c.owner_id,
            team_id: c.team_id,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

fn parse_name(field: &str, raw: &str) -> ApiResult<Name> {
    Name::parse(raw)
        .map_err(|e| ApiError::invalid_field(field, e.to_string(), "不能为空且不超过 200 字"))
}

fn parse_fen(raw: i64) -> ApiResult<Fen> {
    Fen::new(raw).map_err(|e| {
        ApiError::invalid_field(
            "annual_purchase_fen",
            e.to_string(),
            "金额（分）须在 0 到 10^15 之间",
        )
    })
}

fn parse_tags(tags: Vec<String>) -> ApiResult<Vec<String>> {
    if tags.len() > 50 || tags.iter().any(|t| t.chars().count() > 50) {
        return Err(ApiError::invalid_field(
            "tags",
            "at most 50 tags of 50 characters",
            "最多 50 个标签，每个不超过 50 字",
        ));
    }
    Ok(tags
        .into_iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect())
}

/// Resolve a requested owner: only admins and team leads may give a customer to someone else.
async fn resolve_owner(
    state: &AppState,
    caller: &Caller,
    owner_id: Option<&str>,
) -> ApiResult<(String, Option<String>)> {
    match owner_id {
        None => Ok((caller.user_id.clone(), caller.team_id.clone())),
        Some(id) if id == caller.user_id => Ok((caller.user_id.clone(), caller.team_id.clone())),
        Some(id) => {
            if !(caller.is_admin() || caller.leads_team()) {
                return Err(ApiError::forbidden());
            }
            let owner = db::users::find_visible(&state.db, caller, id)
                .await?
                .ok_or_else(|| ApiError::invalid_field("owner_id", "no such user", "用户不存在"))?;
            Ok((owner.id, owner.team_id))
        }
    }
}

async fn visible(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<entities::customer::Model> {
    repo::find_visible(&state.db, caller, id)
        .await?
        .ok_or_else(ApiError::not_found)
}

async fn editable(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<entities::customer::Model> {
    let row = visible(state, caller, id).await?;
    if !repo::may_edit(caller, &row) {
        return Err(ApiError::forbidden());
    }
    Ok(row)
}

/// Customers visible to the caller, oldest first, cursor-paged.
#[utoipa::path(tag = "customers", params(PageQuery), responses((status = 200, body = PageOf<CustomerView>), (status = 400, body = ErrorBody)), security(("bearer" = [])))]
#[get("/customers")]
async fn list_customers(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> ApiResult<web::Json<PageOf<CustomerView>>> {
    let page = repo::list_visible(&state.reads, &caller, &query.into_inner().parse()?).await?;
    Ok(web::Json(PageOf {
        items: page.items.into_iter().map(CustomerView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateCustomerRequest {
    pub name: String,
    pub industry: String,
    /// Fen (1/100 CNY); 800,000 CNY is 80000000.
    pub annual_purchase_fen: i64,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Defaults to the caller; another user only for admins and team leads.
    pub owner_id: Option<String>,
}

#[utoipa::path(tag = "customers", request_body = CreateCustomerRequest, responses((status = 201, body = CustomerView), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[post("/customers")]
async fn create_customer(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateCustomerRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let (owner_id, team_id) = resolve_owner(&state, &caller, body.owner_id.as_deref()).await?;
    let row = repo::create(
        &state.db,
        repo::NewCustomer {
            org_id: caller.org_id.clone(),
            name: parse_name("name", &body.name)?,
            industry: parse_name("industry", &body.industry)?.into_string(),
            annual_purchase: parse_fen(body.annual_purchase_fen)?,
            tags: parse_tags(body.tags)?,
            owner_id,
            team_id,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(CustomerView::from(row)))
}

#[utoipa::path(tag = "customers", responses((status = 200, body = CustomerView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/customers/{id}")]
async fn get_customer(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<CustomerView>> {
    Ok(web::Json(visible(&state, &caller, &id).await?.into()))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PatchCustomerRequest {
    pub name: Option<String>,
    pub industry: Option<String>,
    pub annual_purchase_fen: Option<i64>,
    pub tags: Option<Vec<String>>,
    /// Reassign (admins and team leads only).
    pub owner_id: Option<String>,
}

#[utoipa::path(tag = "customers", request_body = PatchCustomerRequest, responses((status = 200, body = CustomerView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[patch("/customers/{id}")]
async fn patch_customer(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<PatchCustomerRequest>,
) -> ApiResult<web::Json<CustomerView>> {
    let row = editable(&state, &caller, &id).await?;
    let body = body.into_inner();
    let changes = repo::CustomerChanges {
        name: body
            .name
            .as_deref()
            .map(|n| parse_name("name", n))
            .transpose()?,
        industry: body
            .industry
            .as_deref()
            .map(|n| parse_name("industry", n).map(Name::into_string))
            .transpose()?,
        annual_purchase: body.annual_purchase_fen.map(parse_fen).transpose()?,
        tags: body.tags.map(parse_tags).transpose()?,
        owner: match body.owner_id.as_deref() {
            Some(owner) => Some(resolve_owner(&state, &caller, Some(owner)).await?),
            None => None,
        },
    };
    Ok(web::Json(
        repo::update(&state.db, row, changes).await?.into(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ShareRequest {
    pub user_id: String,
}

/// Let another user of your team read this customer.
#[utoipa::path(tag = "customers", request_body = ShareRequest, responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[post("/customers/{id}/shares")]
async fn share_customer(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<ShareRequest>,
) -> ApiResult<HttpResponse> {
    let row = editable(&state, &caller, &id).await?;
    let user = db::users::find_visible(&state.db, &caller, &body.user_id)
        .await?
        .ok_or_else(|| ApiError::invalid_field("user_id", "no such user", "用户不存在"))?;
    repo::share(&state.db, &row.id, &user.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ContactView {
    pub id: String,
    pub customer_id: String,
    pub name: String,
    pub title: String,
    /// executive | director | manager | staff | unknown
    pub seniority: String,
    pub phone: Option<String>,
}

impl From<entities::contact::Model> for ContactView {
    fn from(c: entities::contact::Model) -> Self {
        ContactView {
            id: c.id,
            customer_id: c.customer_id,
            name: c.name,
            title: c.title,
            seniority: c.seniority,
            phone: c.phone,
        }
    }
}

#[utoipa::path(tag = "customers", responses((status = 200, body = Vec<ContactView>), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/customers/{id}/contacts")]
async fn list_contacts(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<Vec<ContactView>>> {
    let customer = visible(&state, &caller, &id).await?;
    let rows = repo::contacts(&state.db, &customer.id).await?;
    Ok(web::Json(rows.into_iter().map(ContactView::from).collect()))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateContactRequest {
    pub name: String,
    #[serde(default)]
    pub title: String,
    /// executive | director | manager | staff | unknown
    pub seniority: String,
    pub phone: Option<String>,
}

#[utoipa::path(tag = "customers", request_body = CreateContactRequest, responses((status = 201, body = ContactView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[post("/customers/{id}/contacts")]
async fn create_contact(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<CreateContactRequest>,
) -> ApiResult<HttpResponse> {
    let customer = editable(&state, &caller, &id).await?;
    let body = body.into_inner();
    let seniority: Seniority =
        body.seniority
            .parse()
            .map_err(|e: fieldproof_domain::customer::UnknownSeniority| {
                ApiError::invalid_field(
                    "seniority",
                    e.to_string(),
                    "职级须为 executive、director、manager、staff 或 unknown",
                )
            })?;
    let row = repo::create_contact(
        &state.db,
        repo::NewContact {
            customer_id: customer.id,
            name: parse_name("name", &body.name)?,
            title: body.title.trim().to_owned(),
            seniority,
            phone: body
                .phone
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty()),
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(ContactView::from(row)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SiteView {
    pub id: String,
    pub customer_id: String,
    pub name: String,
    pub address: String,
    /// Latitude as entered, in `crs`.
    pub lat: f64,
    /// Longitude as entered, in `crs`.
    pub lon: f64,
    /// wgs84 | gcj02 | bd09
    pub crs: String,
    pub radius_m: f64,
    /// The site's local time offset (China: 480).
    pub utc_offset_minutes: i32,
}

impl From<entities::site::Model> for SiteView {
    fn from(s: entities::site::Model) -> Self {
        SiteView {
            id: s.id,
            customer_id: s.customer_id,
            name: s.name,
            address: s.address,
            lat: s.lat,
            lon: s.lon,
            crs: s.crs,
            radius_m: s.radius_m,
            utc_offset_minutes: s.utc_offset_minutes,
        }
    }
}

#[utoipa::path(tag = "customers", responses((status = 200, body = Vec<SiteView>), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/customers/{id}/sites")]
async fn list_sites(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<Vec<SiteView>>> {
    let customer = visible(&state, &caller, &id).await?;
    let rows = repo::sites(&state.db, &customer.id).await?;
    Ok(web::Json(rows.into_iter().map(SiteView::from).collect()))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateSiteRequest {
    pub name: String,
    #[serde(default)]
    pub address: String,
    pub lat: f64,
    pub lon: f64,
    /// The map the point was picked on: wgs84 (GPS), gcj02 (Amap, Tencent), bd09 (Baidu).
    #[serde(default = "default_crs")]
    pub crs: String,
    /// Geofence radius, metres (10-50000, default 300).
    #[serde(default = "default_radius")]
    pub radius_m: f64,
    /// Local time offset, minutes east of UTC (default 480, China).
    #[serde(default = "default_offset")]
    pub utc_offset_minutes: i32,
}

fn default_crs() -> String {
    "wgs84".into()
}
fn default_radius() -> f64 {
    300.0
}
fn default_offset() -> i32 {
    480
}

#[utoipa::path(tag = "customers", request_body = CreateSiteRequest, responses((status = 201, body = SiteView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[post("/customers/{id}/sites")]
async fn create_site(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<CreateSiteRequest>,
) -> ApiResult<HttpResponse> {
    let customer = editable(&state, &caller, &id).await?;
    let body = body.into_inner();
    let crs: Crs = body
        .crs
        .parse()
        .map_err(|e: fieldproof_domain::geo::UnknownCrs| {
            ApiError::invalid_field("crs", e.to_string(), "坐标系须为 wgs84、gcj02 或 bd09")
        })?;
    let place = SitePoint::new(body.lat, body.lon, crs, body.radius_m).map_err(|e| {
        ApiError::invalid_field(
            "location",
            e.to_string(),
            "纬度须在 [-90, 90]，经度须在 [-180, 180]，半径须在 10-50000 米",
        )
    })?;
    if !(-720..=840).contains(&body.utc_offset_minutes) {
        return Err(ApiError::invalid_field(
            "utc_offset_minutes",
            "must be -720..840",
            "须在 -720 到 840 之间",
        ));
    }
    let row = repo::create_site(
        &state.db,
        repo::NewSite {
            customer_id: customer.id,
            name: parse_name("name", &body.name)?,
            address: body.address.trim().to_owned(),
            place,
            utc_offset_minutes: body.utc_offset_minutes,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(SiteView::from(row)))
}
