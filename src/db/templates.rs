//! Pipeline templates. A version, once written, is never changed: editing writes the next
//! version, and a deal keeps the version it started on.

use super::entities::pipeline_template;
use anyhow::Context;
use fieldproof_domain::pipeline::PipelineTemplate;
use fieldproof_domain::pipeline::default_template::default_template;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};

/// A stored template version with its parsed definition.
#[derive(Debug, Clone)]
pub struct StoredTemplate {
    pub id: String,
    pub name: String,
    pub version: i32,
    pub based_on: Option<String>,
    pub definition: PipelineTemplate,
}

fn parse(row: pipeline_template::Model) -> anyhow::Result<StoredTemplate> {
    let definition: PipelineTemplate = serde_json::from_value(row.definition)
        .with_context(|| format!("pipeline_templates.definition of {}", row.id))?;
    Ok(StoredTemplate {
        id: row.id,
        name: row.name,
        version: row.version,
        based_on: row.based_on,
        definition,
    })
}

pub async fn find<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    id: &str,
) -> anyhow::Result<Option<StoredTemplate>> {
    pipeline_template::Entity::find_by_id(id.to_owned())
        .filter(pipeline_template::Column::OrgId.eq(org_id))
        .one(db)
        .await?
        .map(parse)
        .transpose()
}

pub async fn list<C: ConnectionTrait>(db: &C, org_id: &str) -> anyhow::Result<Vec<StoredTemplate>> {
    pipeline_template::Entity::find()
        .filter(pipeline_template::Column::OrgId.eq(org_id))
        .order_by_asc(pipeline_template::Column::Name)
        .order_by_asc(pipeline_template::Column::Version)
        .all(db)
        .await?
        .into_iter()
        .map(parse)
        .collect()
}

async fn latest<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    name: &str,
) -> Result<Option<pipeline_template::Model>, DbErr> {
    pipeline_template::Entity::find()
        .filter(pipeline_template::Column::OrgId.eq(org_id))
        .filter(pipeline_template::Column::Name.eq(name))
        .order_by_desc(pipeline_template::Column::Version)
        .one(db)
        .await
}

/// Write the next version of a template. Two admins saving at once: the unique
/// (org, name, version) index makes one of them fail rather than both get one number.
pub async fn create_version<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    definition: &PipelineTemplate,
    based_on: Option<&str>,
    created_by: Option<&str>,
) -> anyhow::Result<StoredTemplate> {
    let version = latest(db, org_id, &definition.name)
        .await?
        .map(|t| t.version + 1)
        .unwrap_or(1);
    let row = pipeline_template::ActiveModel {
        id: Set(super::new_id()),
        org_id: Set(org_id.to_owned()),
        name: Set(definition.name.clone()),
        version: Set(version),
        definition: Set(serde_json::to_value(definition)?),
        based_on: Set(based_on.map(str::to_owned)),
        created_by: Set(created_by.map(str::to_owned)),
        created_at: Set(super::now()),
    }
    .insert(db)
    .await?;
    parse(row)
}

/// The org's current default template (latest version named `default`), written on first use.
pub async fn default_for_org<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
) -> anyhow::Result<StoredTemplate> {
    if let Some(row) = latest(db, org_id, "default").await? {
        return parse(row);
    }
    match create_version(db, org_id, &default_template(), None, None).await {
        Ok(t) => Ok(t),
        // Another request wrote version 1 first: use it.
        Err(_) => latest(db, org_id, "default")
            .await?
            .context("default template missing after a concurrent write")
            .and_then(parse),
    }
}
