//! Turning what people send — a JSON body, a website form, a spreadsheet row — into a
//! [`LeadDraft`]. One parser for all of them, so a value accepted from a CSV means the same as
//! the same value sent as JSON. Enum fields accept their code or an everyday Chinese name.

use super::tags::{Industry, Region, SourceChannel};
use crate::customer::{Fen, Name, Seniority};
use serde::Serialize;

/// A lead ready to store and assign (response speed is added by the server from history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadDraft {
    pub company: Name,
    pub contact_name: String,
    pub phone: Option<String>,
    pub contact_title: String,
    pub industry: Industry,
    pub source: SourceChannel,
    pub annual_purchase: Fen,
    pub seniority: Seniority,
    pub region: Region,
    pub products: Vec<String>,
    pub notes: String,
}

/// The fields as received, all optional strings (the amount already in fen).
#[derive(Debug, Clone, Default)]
pub struct RawLead {
    pub company: Option<String>,
    pub contact_name: Option<String>,
    pub phone: Option<String>,
    pub contact_title: Option<String>,
    pub industry: Option<String>,
    pub source: Option<String>,
    pub annual_purchase_fen: Option<i64>,
    pub seniority: Option<String>,
    pub province: Option<String>,
    pub city: Option<String>,
    pub products: Vec<String>,
    pub notes: Option<String>,
}

/// One field's problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: &'static str,
    /// `required`, `invalid` or `too_long`.
    pub code: &'static str,
    pub message: String,
}

fn error(field: &'static str, code: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        code,
        message: message.into(),
    }
}

fn text(
    v: &Option<String>,
    field: &'static str,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> String {
    let s = v.as_deref().map(str::trim).unwrap_or("");
    if s.chars().count() > max {
        errors.push(error(
            field,
            "too_long",
            format!("at most {max} characters"),
        ));
        return String::new();
    }
    if s.chars().any(char::is_control) {
        errors.push(error(
            field,
            "invalid",
            "control characters are not allowed",
        ));
        return String::new();
    }
    s.to_owned()
}

/// Seniority from a job title when no seniority is given (总经理 → executive, 采购 → staff…).
pub fn seniority_from_title(title: &str) -> Seniority {
    let t = title.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| t.contains(w));
    if has(&[
        "董事长",
        "总经理",
        "老板",
        "总裁",
        "ceo",
        "owner",
        "chairman",
        "president",
        "法人",
    ]) {
        Seniority::Executive
    } else if has(&["总监", "副总", "vp", "director", "cto", "cfo", "coo"]) {
        Seniority::Director
    } else if has(&["经理", "厂长", "主管", "manager", "head"]) {
        Seniority::Manager
    } else if has(&[
        "工程师",
        "采购",
        "专员",
        "助理",
        "职员",
        "engineer",
        "buyer",
        "staff",
        "clerk",
    ]) {
        Seniority::Staff
    } else {
        Seniority::Unknown
    }
}

fn seniority_loose(raw: &str) -> Option<Seniority> {
    let s = raw.trim();
    s.to_lowercase()
        .parse::<Seniority>()
        .ok()
        .or(match seniority_from_title(s) {
            Seniority::Unknown if s == "未知" => Some(Seniority::Unknown),
            Seniority::Unknown => None,
            known => Some(known),
        })
}

impl RawLead {
    /// Validate every field and collect every problem. `default_source` applies when the source
    /// is blank (the capture form's channel, `import` for a spreadsheet).
    pub fn parse(&self, default_source: SourceChannel) -> Result<LeadDraft, Vec<FieldError>> {
        let mut errors = Vec::new();
        let company = match self.company.as_deref().map(str::trim) {
            None | Some("") => {
                errors.push(error("company", "required", "the company name is required"));
                None
            }
            Some(c) => match Name::parse(c) {
                Ok(n) => Some(n),
                Err(e) => {
                    errors.push(error("company", "invalid", e.to_string()));
                    None
                }
            },
        };
        let contact_name = text(&self.contact_name, "contact_name", 100, &mut errors);
        let contact_title = text(&self.contact_title, "contact_title", 100, &mut errors);
        let notes = text(&self.notes, "notes", 2000, &mut errors);
        let phone = match self.phone.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(p) if p.chars().count() > 40 => {
                errors.push(error("phone", "too_long", "at most 40 characters"));
                None
            }
            Some(p) => match super::normalize::phone_key(p) {
                Some(_) => Some(p.to_owned()),
                None => {
                    errors.push(error(
                        "phone",
                        "invalid",
                        format!("`{p}` is not a phone number"),
                    ));
                    None
                }
            },
        };
        let industry = match self.industry.as_deref().map(str::trim) {
            None | Some("") => Some(Industry::Other),
            Some(i) => Industry::parse_loose(i).or_else(|| {
                errors.push(error(
                    "industry",
                    "invalid",
                    format!("unknown industry `{i}`"),
                ));
                None
            }),
        };
        let source = match self.source.as_deref().map(str::trim) {
            None | Some("") => Some(default_source),
            Some(s) => SourceChannel::parse_loose(s).or_else(|| {
                errors.push(error(
                    "source",
                    "invalid",
                    format!("unknown source channel `{s}`"),
                ));
                None
            }),
        };
        let annual_purchase = match Fen::new(self.annual_purchase_fen.unwrap_or(0)) {
            Ok(f) => Some(f),
            Err(e) => {
                errors.push(error("annual_purchase", "invalid", e.to_string()));
                None
            }
        };
        let seniority = match self.seniority.as_deref().map(str::trim) {
            None | Some("") => Some(seniority_from_title(&contact_title)),
            Some(s) => seniority_loose(s).or_else(|| {
                errors.push(error(
                    "seniority",
                    "invalid",
                    format!("unknown seniority `{s}`"),
                ));
                None
            }),
        };
        let province = text(&self.province, "province", 50, &mut errors);
        let city = text(&self.city, "city", 50, &mut errors);
        if self.products.len() > 20 || self.products.iter().any(|p| p.chars().count() > 50) {
            errors.push(error(
                "products",
                "invalid",
                "at most 20 products of 50 characters",
            ));
        }
        match (company, industry, source, annual_purchase, seniority) {
            (
                Some(company),
                Some(industry),
                Some(source),
                Some(annual_purchase),
                Some(seniority),
            ) if errors.is_empty() => Ok(LeadDraft {
                company,
                contact_name,
                phone,
                contact_title,
                industry,
                source,
                annual_purchase,
                seniority,
                region: Region::new(&province, &city),
                products: self
                    .products
                    .iter()
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty())
                    .collect(),
                notes,
            }),
            _ => Err(errors),
        }
    }
}

/// A spreadsheet column fieldproof understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Column {
    Company,
    ContactName,
    Phone,
    ContactTitle,
    Industry,
    Source,
    /// Amount in yuan (元).
    PurchaseYuan,
    /// Amount in ten thousands of yuan (万元), how Chinese spreadsheets usually state it.
    PurchaseWan,
    PurchaseFen,
    Seniority,
    Province,
    City,
    Products,
    Notes,
}

/// Which column a header names: English field names or the usual Chinese headings.
pub fn column_for(header: &str) -> Option<Column> {
    let h: String = header
        .trim()
        .trim_start_matches('\u{feff}')
        .chars()
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            c => c,
        })
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase();
    let col = match h.as_str() {
        "company" | "公司" | "公司名称" | "客户名称" | "企业名称" | "单位名称" | "客户" => {
            Column::Company
        }
        "contact_name" | "contact" | "联系人" | "联系人姓名" | "姓名" => {
            Column::ContactName
        }
        "phone" | "mobile" | "电话" | "手机" | "手机号" | "联系电话" | "电话号码" => {
            Column::Phone
        }
        "contact_title" | "title" | "职位" | "职务" | "岗位" => Column::ContactTitle,
        "industry" | "行业" | "所属行业" => Column::Industry,
        "source" | "来源" | "线索来源" | "客户来源" | "渠道" => Column::Source,
        "annual_purchase_fen" => Column::PurchaseFen,
        "annual_purchase_cny"
        | "annual_purchase_yuan"
        | "年采购额"
        | "年采购额(元)"
        | "预估年采购额"
        | "预估年采购额(元)" => Column::PurchaseYuan,
        "年采购额(万元)" | "预估年采购额(万元)" | "年采购额(万)" => {
            Column::PurchaseWan
        }
        "seniority" | "职级" | "联系人职级" | "决策级别" => Column::Seniority,
        "province" | "省份" | "省" | "所在省份" => Column::Province,
        "city" | "城市" | "市" | "所在城市" => Column::City,
        "products" | "产品" | "意向产品" | "产品线" => Column::Products,
        "notes" | "备注" | "说明" => Column::Notes,
        _ => return None,
    };
    Some(col)
}

/// An amount written in a spreadsheet (`1,234.5`, `１２３４`, `80万`) in fen, given the unit of
/// its column. At most two decimals of yuan (fen is the smallest unit).
pub fn amount_to_fen(raw: &str, column: Column) -> Result<i64, String> {
    let mut s: String = raw
        .trim()
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '．' => '.',
            c => c,
        })
        .filter(|c| !matches!(c, ',' | '，' | ' ' | '¥' | '￥'))
        .collect();
    let mut scale: i128 = match column {
        Column::PurchaseFen => 1,
        Column::PurchaseWan => 1_000_000,
        _ => 100,
    };
    if let Some(rest) = s.strip_suffix("万元").or_else(|| s.strip_suffix('万')) {
        s = rest.to_owned();
        scale = 1_000_000;
    } else if let Some(rest) = s.strip_suffix('元') {
        s = rest.to_owned();
    }
    if s.is_empty() {
        return Ok(0);
    }
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    if int.is_empty() && frac.is_empty()
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || int.len() > 16
        || frac.len() > 8
    {
        return Err(format!("`{raw}` is not an amount"));
    }
    let digits: i128 = format!("{int}{frac}")
        .parse()
        .map_err(|_| format!("`{raw}` is not an amount"))?;
    let divisor = 10i128.pow(frac.len() as u32);
    let scaled = digits * scale;
    if scaled % divisor != 0 {
        return Err(format!("`{raw}` has fractions of a fen"));
    }
    i64::try_from(scaled / divisor).map_err(|_| format!("`{raw}` is too large"))
}

/// Build a [`RawLead`] from one spreadsheet row, given the columns its headers named.
pub fn raw_from_row(
    columns: &[Option<Column>],
    fields: &[&str],
) -> Result<RawLead, Vec<FieldError>> {
    let mut raw = RawLead::default();
    let mut errors = Vec::new();
    for (col, value) in columns.iter().zip(fields) {
        let Some(col) = col else { continue };
        let v = Some((*value).to_owned());
        match col {
            Column::Company => raw.company = v,
            Column::ContactName => raw.contact_name = v,
            Column::Phone => raw.phone = v,
            Column::ContactTitle => raw.contact_title = v,
            Column::Industry => raw.industry = v,
            Column::Source => raw.source = v,
            Column::Seniority => raw.seniority = v,
            Column::Province => raw.province = v,
            Column::City => raw.city = v,
            Column::Notes => raw.notes = v,
            Column::Products => {
                raw.products = value
                    .split(['、', ',', '，', ';', '；', '/'])
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty())
                    .collect();
            }
            Column::PurchaseYuan | Column::PurchaseWan | Column::PurchaseFen => {
                match amount_to_fen(value, *col) {
                    Ok(fen) => raw.annual_purchase_fen = Some(fen),
                    Err(message) => errors.push(error("annual_purchase", "invalid", message)),
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(raw)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_headers_map_to_fields() {
        assert_eq!(column_for("公司名称"), Some(Column::Company));
        assert_eq!(column_for("\u{feff}公司名称"), Some(Column::Company));
        assert_eq!(column_for("年采购额（万元）"), Some(Column::PurchaseWan));
        assert_eq!(column_for(" 省份 "), Some(Column::Province));
        assert_eq!(column_for("微信号"), None);
    }

    #[test]
    fn amounts_convert_to_fen_exactly() {
        assert_eq!(amount_to_fen("80", Column::PurchaseWan), Ok(80_000_000));
        assert_eq!(
            amount_to_fen("800,000", Column::PurchaseYuan),
            Ok(80_000_000)
        );
        assert_eq!(amount_to_fen("80万", Column::PurchaseYuan), Ok(80_000_000));
        assert_eq!(amount_to_fen("12.34", Column::PurchaseYuan), Ok(1234));
        assert_eq!(amount_to_fen("１２", Column::PurchaseYuan), Ok(1200));
        assert_eq!(amount_to_fen("", Column::PurchaseYuan), Ok(0));
        assert!(amount_to_fen("12.345", Column::PurchaseYuan).is_err());
        assert!(amount_to_fen("lots", Column::PurchaseYuan).is_err());
        assert!(amount_to_fen("-5", Column::PurchaseYuan).is_err());
    }

    #[test]
    fn a_row_parses_with_loose_values_and_reports_every_error() {
        let cols: Vec<Option<Column>> = [
            "公司名称",
            "联系人",
            "电话",
            "职位",
            "行业",
            "省份",
            "城市",
            "年采购额(万元)",
        ]
        .iter()
        .map(|h| column_for(h))
        .collect();
        let raw = raw_from_row(
            &cols,
            &[
                "杭州某机械有限公司",
                "王工",
                "+86 138-0013-8000",
                "采购经理",
                "制造业",
                "浙江省",
                "杭州",
                "120",
            ],
        )
        .unwrap();
        let draft = raw.parse(SourceChannel::Import).unwrap();
        assert_eq!(draft.industry, Industry::Manufacturing);
        assert_eq!(draft.annual_purchase.get(), 120_000_000);
        assert_eq!(draft.seniority, Seniority::Manager);
        assert_eq!(draft.region, Region::new("浙江", "杭州"));
        assert_eq!(draft.source, SourceChannel::Import);

        let bad = RawLead {
            company: Some(" ".into()),
            industry: Some("烘焙".into()),
            phone: Some("n/a".into()),
            ..RawLead::default()
        };
        let errors = bad.parse(SourceChannel::Import).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["company", "phone", "industry"]);
    }
}
