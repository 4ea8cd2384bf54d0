//! CSV import of up to 100k leads with a per-row error report.
//!
//! Encoding: a UTF-8 BOM, else valid UTF-8, else GB18030 (a superset of GBK, which is what Excel
//! in China writes); `encoding` may force one. Headers may be Chinese (see
//! `domain::leads::import::column_for`). Rows are parsed one at a time and inserted in batches,
//! each batch in its own transaction, so a bad row only costs its own line in the report and the
//! parsed rows are never all held in memory. Imported leads wait in the pool with
//! `needs_assignment` and the background job assigns them (in order) within seconds.

use super::Origin;
use crate::db::{
    self,
    entities::{lead_import, lead_import_error},
    leads as repo,
};
use encoding_rs::{Encoding, GB18030, UTF_8};
use fieldproof_domain::leads::SourceChannel;
use fieldproof_domain::leads::import::{Column, FieldError, column_for, raw_from_row};
use sea_orm::{DatabaseConnection, Set, TransactionTrait};
use serde::Serialize;
use std::borrow::Cow;

pub const MAX_ROWS: usize = 100_000;
const BATCH: usize = 500;
/// Errors returned in the response body; all of them are stored and paged at
/// `/leads/imports/{id}/errors`.
pub const ERRORS_IN_RESPONSE: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodingChoice {
    Auto,
    Utf8,
    Gb18030,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RowError {
    /// 1-based line of the data row (the header is row 1, so the first data row is 2).
    pub row: usize,
    pub field: String,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub import_id: String,
    /// `utf-8` or `gb18030`.
    pub encoding: String,
    pub rows: usize,
    pub accepted: usize,
    pub rejected: usize,
    /// Headers that name no known field (their columns were ignored).
    pub ignored_headers: Vec<String>,
    /// The first errors; `errors_total` says how many there are in all.
    pub errors: Vec<RowError>,
    pub errors_total: usize,
}

/// Why a whole file was refused (nothing imported).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileRefused {
    NoHeader,
    NoCompanyColumn { headers: Vec<String> },
    TooManyRows,
    NotText,
}

/// Decode the bytes as text, borrowing when they are UTF-8 already.
pub fn decode(
    bytes: &[u8],
    choice: EncodingChoice,
) -> Result<(Cow<'_, str>, &'static Encoding), FileRefused> {
    let bom_stripped = bytes.strip_prefix(b"\xEF\xBB\xBF");
    let utf8 = match choice {
        EncodingChoice::Utf8 => true,
        EncodingChoice::Gb18030 => false,
        EncodingChoice::Auto => bom_stripped.is_some() || std::str::from_utf8(bytes).is_ok(),
    };
    if utf8 {
        let body = bom_stripped.unwrap_or(bytes);
        return std::str::from_utf8(body)
            .map(|s| (Cow::Borrowed(s), UTF_8))
            .map_err(|_| FileRefused::NotText);
    }
    let (text, had_errors) = GB18030.decode_without_bom_handling(bytes);
    if had_errors {
        return Err(FileRefused::NotText);
    }
    Ok((text, GB18030))
}

fn row_errors(row: usize, errors: Vec<FieldError>) -> impl Iterator<Item = RowError> {
    errors.into_iter().map(move |e| RowError {
        row,
        field: e.field.to_owned(),
        code: e.code.to_owned(),
        message: e.message,
    })
}

/// Import `bytes` for `org_id` as `user_id`.
pub async fn import_csv(
    db: &DatabaseConnection,
    org_id: &str,
    user_id: &str,
    bytes: &[u8],
    choice: EncodingChoice,
) -> anyhow::Result<Result<ImportReport, FileRefused>> {
    let (text, encoding) = match decode(bytes, choice) {
        Ok(t) => t,
        Err(refused) => return Ok(Err(refused)),
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        _ => return Ok(Err(FileRefused::NoHeader)),
    };
    let columns: Vec<Option<Column>> = header.iter().map(column_for).collect();
    if !columns.contains(&Some(Column::Company)) {
        return Ok(Err(FileRefused::NoCompanyColumn {
            headers: header.iter().map(str::to_owned).collect(),
        }));
    }
    let ignored_headers: Vec<String> = header
        .iter()
        .zip(&columns)
        .filter(|(_, c)| c.is_none())
        .map(|(h, _)| h.to_owned())
        .collect();

    let now = db::now();
    let import = repo::insert_import(
        db,
        lead_import::ActiveModel {
            id: Set(db::new_id()),
            org_id: Set(org_id.to_owned()),
            created_by: Set(user_id.to_owned()),
            encoding: Set(encoding.name().to_lowercase()),
            rows: Set(0),
            accepted: Set(0),
            rejected: Set(0),
            created_at: Set(now),
        },
    )
    .await?;
    let origin = Origin {
        source_id: None,
        import_id: Some(import.id.clone()),
    };
    let (mut rows, mut accepted, mut rejected) = (0usize, 0usize, 0usize);
    let mut first_errors: Vec<RowError> = Vec::new();
    let mut errors_total = 0usize;
    let mut lead_batch = Vec::with_capacity(BATCH);
    let mut error_batch: Vec<RowError> = Vec::new();
    for (index, record) in records.enumerate() {
        let line = index + 2;
        rows += 1;
        if rows > MAX_ROWS {
            // The rows already stored stay; the report says where the file was cut off.
            error_batch.push(RowError {
                row: line,
                field: "file".into(),
                code: "too_many_rows".into(),
                message: format!("only the first {MAX_ROWS} rows are imported"),
            });
            rows -= 1;
            break;
        }
        let outcome = match record {
            Err(e) => Err(vec![RowError {
                row: line,
                field: "row".into(),
                code: "invalid".into(),
                message: format!("not a CSV row: {e}"),
            }]),
            Ok(rec) if rec.iter().all(|f| f.trim().is_empty()) => {
                rows -= 1; // blank lines are not rows
                continue;
            }
            Ok(rec) => {
                let fields: Vec<&str> = rec.iter().collect();
                raw_from_row(&columns, &fields)
                    .and_then(|raw| raw.parse(SourceChannel::Import))
                    .map_err(|errs| row_errors(line, errs).collect())
            }
        };
        match outcome {
            Ok(draft) => {
                lead_batch.push(super::new_row(org_id, draft, &origin, now));
                accepted += 1;
            }
            Err(errs) => {
                rejected += 1;
                error_batch.extend(errs);
            }
        }
        if lead_batch.len() >= BATCH {
            flush(
                db,
                &import.id,
                &mut lead_batch,
                &mut error_batch,
                &mut first_errors,
                &mut errors_total,
            )
            .await?;
        }
        if error_batch.len() >= BATCH {
            flush(
                db,
                &import.id,
                &mut Vec::new(),
                &mut error_batch,
                &mut first_errors,
                &mut errors_total,
            )
            .await?;
        }
    }
    flush(
        db,
        &import.id,
        &mut lead_batch,
        &mut error_batch,
        &mut first_errors,
        &mut errors_total,
    )
    .await?;
    let mut active: lead_import::ActiveModel = import.clone().into();
    active.rows = Set(i32::try_from(rows).unwrap_or(i32::MAX));
    active.accepted = Set(i32::try_from(accepted).unwrap_or(i32::MAX));
    active.rejected = Set(i32::try_from(rejected).unwrap_or(i32::MAX));
    repo::save_import(db, active).await?;
    Ok(Ok(ImportReport {
        import_id: import.id,
        encoding: encoding.name().to_lowercase(),
        rows,
        accepted,
        rejected,
        ignored_headers,
        errors: first_errors,
        errors_total,
    }))
}

async fn flush(
    db: &DatabaseConnection,
    import_id: &str,
    leads: &mut Vec<crate::db::entities::lead::ActiveModel>,
    errors: &mut Vec<RowError>,
    first_errors: &mut Vec<RowError>,
    errors_total: &mut usize,
) -> anyhow::Result<()> {
    let txn = db.begin().await?;
    repo::insert_leads(&txn, std::mem::take(leads)).await?;
    let drained = std::mem::take(errors);
    *errors_total += drained.len();
    let rows = drained
        .iter()
        .map(|e| lead_import_error::ActiveModel {
            id: Set(db::new_id()),
            import_id: Set(import_id.to_owned()),
            row_number: Set(i32::try_from(e.row).unwrap_or(i32::MAX)),
            field: Set(e.field.clone()),
            code: Set(e.code.clone()),
            message: Set(e.message.chars().take(500).collect()),
        })
        .collect();
    repo::insert_import_errors(&txn, rows).await?;
    txn.commit().await?;
    first_errors.extend(
        drained
            .into_iter()
            .take(ERRORS_IN_RESPONSE.saturating_sub(first_errors.len())),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_detected() {
        let (text, enc) = decode("\u{feff}公司名称\n".as_bytes(), EncodingChoice::Auto).unwrap();
        assert_eq!((text.as_ref(), enc), ("公司名称\n", UTF_8));
        let (gbk, _, _) = GB18030.encode("公司名称,电话\n杭州某机械有限公司,138\n");
        let (text, enc) = decode(&gbk, EncodingChoice::Auto).unwrap();
        assert_eq!(enc, GB18030);
        assert!(text.starts_with("公司名称,电话"));
    }
}
