//! Quote arithmetic, content hashing and numbering: pure, integer-only, no IO.
//!
//! Money is integer fen everywhere; a float never touches an amount. Every division rounds
//! **half up** (四舍五入, the rule Chinese invoices use), done once and in one place:
//!
//! - line gross    = quantity × unit price (exact);
//! - line discount = round_half_up(gross × discount_bp / 10 000), so 0 ≤ discount ≤ gross;
//! - line net      = gross − discount (exact);
//! - subtotal      = Σ net (exact);
//! - tax           = round_half_up(subtotal × tax_rate_bp / 10 000), on the subtotal, not per
//!   line, so rounding happens once for the tax and never adds up across lines;
//! - total         = subtotal + tax (exact).
//!
//! Hence Σ gross = Σ discount + subtotal and total = subtotal + tax hold to the fen, and each
//! rounded amount is within half a fen of the exact rational value (property-tested below).

use crate::customer::Fen;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Basis points in one whole (100 %).
pub const BP_ONE: i64 = 10_000;
/// Most lines on one quote.
pub const MAX_LINES: usize = 200;
/// Largest quantity on a line.
pub const MAX_QUANTITY: i64 = 1_000_000;
/// Highest tax rate accepted (30 %); China's VAT rates are 0, 1, 3, 6, 9 and 13 %.
pub const MAX_TAX_BP: i64 = 3_000;

/// One line as the client sends it, before checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteLineInput {
    pub sku: String,
    pub description: String,
    pub quantity: i64,
    pub unit_price_fen: i64,
    /// Discount in basis points of the line's gross (1 000 = 10 % off); default none.
    #[serde(default)]
    pub discount_bp: i64,
}

/// A checked line. Construct with [`QuoteLine::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteLine {
    sku: String,
    description: String,
    quantity: i64,
    unit_price_fen: i64,
    discount_bp: i64,
}

/// Why a quote's content was refused; `field` names what the client must fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct QuoteError {
    pub field: &'static str,
    pub reason: &'static str,
    pub reason_zh: &'static str,
}

fn refuse(field: &'static str, reason: &'static str, reason_zh: &'static str) -> QuoteError {
    QuoteError {
        field,
        reason,
        reason_zh,
    }
}

impl QuoteLine {
    pub fn parse(input: QuoteLineInput) -> Result<QuoteLine, QuoteError> {
        let sku = input.sku.trim();
        if sku.is_empty() || sku.chars().count() > 64 {
            return Err(refuse(
                "lines.sku",
                "1-64 characters",
                "产品编码须为 1-64 个字符",
            ));
        }
        let description = input.description.trim();
        if description.is_empty() || description.chars().count() > 200 {
            return Err(refuse(
                "lines.description",
                "1-200 characters",
                "产品描述须为 1-200 个字符",
            ));
        }
        if !(1..=MAX_QUANTITY).contains(&input.quantity) {
            return Err(refuse("lines.quantity", "1-1000000", "数量须为 1-1000000"));
        }
        if Fen::new(input.unit_price_fen).is_err() {
            return Err(refuse(
                "lines.unit_price_fen",
                "0-10^15 fen",
                "单价须为 0-10^15 分",
            ));
        }
        if !(0..=BP_ONE).contains(&input.discount_bp) {
            return Err(refuse(
                "lines.discount_bp",
                "0-10000 basis points",
                "折扣须为 0-10000 个基点",
            ));
        }
        Ok(QuoteLine {
            sku: sku.to_owned(),
            description: description.to_owned(),
            quantity: input.quantity,
            unit_price_fen: input.unit_price_fen,
            discount_bp: input.discount_bp,
        })
    }

    pub fn sku(&self) -> &str {
        &self.sku
    }
    pub fn description(&self) -> &str {
        &self.description
    }
    pub fn quantity(&self) -> i64 {
        self.quantity
    }
    pub fn unit_price_fen(&self) -> i64 {
        self.unit_price_fen
    }
    pub fn discount_bp(&self) -> i64 {
        self.discount_bp
    }
}

/// `round_half_up(numerator / BP_ONE)` for a non-negative numerator.
fn bp_round_half_up(numerator: i128) -> i128 {
    (numerator + i128::from(BP_ONE / 2)) / i128::from(BP_ONE)
}

/// A line's amounts, in fen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineAmounts {
    pub gross_fen: i64,
    pub discount_fen: i64,
    pub net_fen: i64,
}

/// The whole quote's amounts, in fen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteTotals {
    pub lines: Vec<LineAmounts>,
    pub gross_fen: i64,
    pub discount_fen: i64,
    pub subtotal_fen: i64,
    pub tax_fen: i64,
    pub total_fen: i64,
}

/// Compute every amount of a quote. Intermediate products are `i128`, so nothing overflows
/// before the final bound check: a total above [`Fen::MAX`] is refused, never wrapped.
pub fn compute_totals(lines: &[QuoteLine], tax_rate_bp: i64) -> Result<QuoteTotals, QuoteError> {
    if lines.is_empty() || lines.len() > MAX_LINES {
        return Err(refuse("lines", "1-200 lines", "须有 1-200 行"));
    }
    if !(0..=MAX_TAX_BP).contains(&tax_rate_bp) {
        return Err(refuse(
            "tax_rate_bp",
            "0-3000 basis points",
            "税率须为 0-3000 个基点",
        ));
    }
    let too_large = || refuse("lines", "total too large", "总金额过大");
    let max = i128::from(Fen::MAX);
    let mut amounts = Vec::with_capacity(lines.len());
    let (mut gross_sum, mut discount_sum) = (0i128, 0i128);
    for line in lines {
        let gross = i128::from(line.quantity) * i128::from(line.unit_price_fen);
        let discount = bp_round_half_up(gross * i128::from(line.discount_bp));
        gross_sum += gross;
        discount_sum += discount;
        if gross > max || gross_sum > max {
            return Err(too_large());
        }
        let gross = i64::try_from(gross).map_err(|_| too_large())?;
        let discount = i64::try_from(discount).map_err(|_| too_large())?;
        amounts.push(LineAmounts {
            gross_fen: gross,
            discount_fen: discount,
            net_fen: gross - discount,
        });
    }
    let subtotal = gross_sum - discount_sum;
    let tax = bp_round_half_up(subtotal * i128::from(tax_rate_bp));
    let total = subtotal + tax;
    if total > max {
        return Err(too_large());
    }
    let fen = |v: i128| i64::try_from(v).map_err(|_| too_large());
    Ok(QuoteTotals {
        lines: amounts,
        gross_fen: fen(gross_sum)?,
        discount_fen: fen(discount_sum)?,
        subtotal_fen: fen(subtotal)?,
        tax_fen: fen(tax)?,
        total_fen: fen(total)?,
    })
}

/// Everything a quote revision says to the customer: what its hash covers. The system number
/// is not part of it (it is assigned when the content is frozen), the revision is, so every new
/// revision has a new hash even when its lines happen to be equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteContent<'a> {
    pub deal_id: &'a str,
    pub revision: i32,
    pub currency: &'a str,
    pub tax_rate_bp: i64,
    /// `YYYY-MM-DD`, the last day the quote is valid.
    pub valid_until: &'a str,
    pub lines: &'a [QuoteLine],
    pub totals: &'a QuoteTotals,
}

impl QuoteContent<'_> {
    /// SHA-256 (hex) over a canonical encoding: each field length-prefixed, so no two different
    /// contents can encode to the same bytes, and no serializer's choices can change it.
    pub fn content_hash(&self) -> String {
        let mut hasher = Sha256::new();
        let mut field = |bytes: &[u8]| {
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        };
        field(b"fieldproof-quote-v1");
        field(self.deal_id.as_bytes());
        field(self.revision.to_string().as_bytes());
        field(self.currency.as_bytes());
        field(self.tax_rate_bp.to_string().as_bytes());
        field(self.valid_until.as_bytes());
        field(self.lines.len().to_string().as_bytes());
        for line in self.lines {
            field(line.sku.as_bytes());
            field(line.description.as_bytes());
            field(line.quantity.to_string().as_bytes());
            field(line.unit_price_fen.to_string().as_bytes());
            field(line.discount_bp.to_string().as_bytes());
        }
        field(self.totals.total_fen.to_string().as_bytes());
        let digest = hasher.finalize();
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The system number of the `seq`-th quote issued in `year`: `Q2026-000123`. Six digits are a
/// minimum width, not a limit: the millionth quote of a year is `Q2026-1000000`.
pub fn quote_number(year: i32, seq: i64) -> String {
    format!("Q{year}-{seq:06}")
}

/// Format fen as yuan for people: `1234567` → `12,345.67`. Display only; never parsed back.
pub fn format_yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    let yuan = (abs / 100).to_string();
    let mut grouped = String::with_capacity(yuan.len() + yuan.len() / 3);
    for (i, c) in yuan.chars().enumerate() {
        if i > 0 && (yuan.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{:02}", abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(qty: i64, price: i64, discount_bp: i64) -> QuoteLine {
        QuoteLine::parse(QuoteLineInput {
            sku: "CP-200".into(),
            description: "离心泵".into(),
            quantity: qty,
            unit_price_fen: price,
            discount_bp,
        })
        .unwrap()
    }

    #[test]
    fn a_worked_example_rounds_half_up_once_per_amount() {
        // 3 × 33.33 = 99.99, 15 % off = 14.9985 → 15.00; 1 × 0.05 at 10 % off = 0.005 → 0.01.
        let lines = [line(3, 3_333, 1_500), line(1, 5, 1_000)];
        let t = compute_totals(&lines, 1_300).unwrap();
        assert_eq!(t.lines[0].discount_fen, 1_500);
        assert_eq!(t.lines[1].discount_fen, 1);
        assert_eq!(t.subtotal_fen, 9_999 - 1_500 + 5 - 1);
        // 8 503 × 13 % = 1 105.39 → 1 105.
        assert_eq!(t.tax_fen, 1_105);
        assert_eq!(t.total_fen, 8_503 + 1_105);
    }

    #[test]
    fn bad_lines_and_rates_are_refused_with_the_field() {
        let bad = QuoteLine::parse(QuoteLineInput {
            sku: " ".into(),
            description: "x".into(),
            quantity: 1,
            unit_price_fen: 1,
            discount_bp: 0,
        });
        assert_eq!(bad.unwrap_err().field, "lines.sku");
        assert_eq!(compute_totals(&[], 0).unwrap_err().field, "lines");
        assert_eq!(
            compute_totals(&[line(1, 1, 0)], 3_001).unwrap_err().field,
            "tax_rate_bp"
        );
        let huge = vec![line(MAX_QUANTITY, Fen::MAX, 0); 2];
        assert_eq!(
            compute_totals(&huge, 0).unwrap_err().reason,
            "total too large"
        );
    }

    #[test]
    fn numbers_are_zero_padded_per_year() {
        assert_eq!(quote_number(2026, 123), "Q2026-000123");
        assert_eq!(quote_number(2027, 1_000_000), "Q2027-1000000");
    }

    #[test]
    fn yuan_are_grouped_for_reading() {
        assert_eq!(format_yuan(0), "0.00");
        assert_eq!(format_yuan(5), "0.05");
        assert_eq!(format_yuan(123_456_789), "1,234,567.89");
    }

    #[test]
    fn the_hash_changes_with_any_field_and_the_revision() {
        let lines = [line(2, 10_000, 0)];
        let totals = compute_totals(&lines, 1_300).unwrap();
        let base = QuoteContent {
            deal_id: "d1",
            revision: 1,
            currency: "CNY",
            tax_rate_bp: 1_300,
            valid_until: "2026-12-31",
            lines: &lines,
            totals: &totals,
        };
        let h = base.content_hash();
        assert_eq!(h.len(), 64);
        assert_eq!(h, base.clone().content_hash());
        assert_ne!(
            h,
            QuoteContent {
                revision: 2,
                ..base.clone()
            }
            .content_hash()
        );
        assert_ne!(
            h,
            QuoteContent {
                valid_until: "2027-01-01",
                ..base.clone()
            }
            .content_hash()
        );
        let other = [line(2, 10_001, 0)];
        let other_totals = compute_totals(&other, 1_300).unwrap();
        assert_ne!(
            h,
            QuoteContent {
                lines: &other,
                totals: &other_totals,
                ..base
            }
            .content_hash()
        );
    }

    fn arb_line() -> impl Strategy<Value = QuoteLine> {
        (
            1..=MAX_QUANTITY,
            prop_oneof![0..=1_000i64, 0..=10_000_000_000i64],
            prop_oneof![Just(0i64), Just(BP_ONE), 0..=BP_ONE],
        )
            .prop_map(|(q, p, d)| line(q, p, d))
    }

    proptest! {
        #[test]
        fn no_fen_is_lost_or_invented(
            lines in proptest::collection::vec(arb_line(), 1..20),
            tax in 0..=MAX_TAX_BP,
        ) {
            let Ok(t) = compute_totals(&lines, tax) else { return Ok(()); };
            let mut gross = 0i128;
            for (l, a) in lines.iter().zip(&t.lines) {
                // Gross is exact.
                prop_assert_eq!(i128::from(a.gross_fen), i128::from(l.quantity()) * i128::from(l.unit_price_fen()));
                // Discount and net split the gross exactly; discount never exceeds it.
                prop_assert_eq!(a.discount_fen + a.net_fen, a.gross_fen);
                prop_assert!(0 <= a.discount_fen && a.discount_fen <= a.gross_fen);
                // Within half a fen of the exact discount, a tie rounding up:
                // d·10000 − g·bp ∈ (−5000, 5000].
                let exact = i128::from(a.gross_fen) * i128::from(l.discount_bp());
                let err = i128::from(a.discount_fen) * 10_000 - exact;
                prop_assert!((-4_999..=5_000).contains(&err), "discount error {err}");
                gross += i128::from(a.gross_fen);
            }
            prop_assert_eq!(i128::from(t.gross_fen), gross);
            prop_assert_eq!(t.gross_fen, t.discount_fen + t.subtotal_fen);
            prop_assert_eq!(t.subtotal_fen, t.lines.iter().map(|a| a.net_fen).sum::<i64>());
            prop_assert_eq!(t.total_fen, t.subtotal_fen + t.tax_fen);
            let exact_tax = i128::from(t.subtotal_fen) * i128::from(tax);
            let tax_err = i128::from(t.tax_fen) * 10_000 - exact_tax;
            prop_assert!((-4_999..=5_000).contains(&tax_err), "tax error {tax_err}");
        }

        #[test]
        fn order_of_lines_does_not_change_the_totals(
            lines in proptest::collection::vec(arb_line(), 1..10),
            tax in 0..=MAX_TAX_BP,
        ) {
            let mut reversed = lines.clone();
            reversed.reverse();
            match (compute_totals(&lines, tax), compute_totals(&reversed, tax)) {
                (Ok(a), Ok(b)) => {
                    prop_assert_eq!(a.total_fen, b.total_fen);
                    prop_assert_eq!(a.tax_fen, b.tax_fen);
                }
                (Err(_), Err(_)) => {}
                other => prop_assert!(false, "one order failed: {:?}", other),
            }
        }

        #[test]
        fn more_discount_never_costs_more(
            qty in 1..=MAX_QUANTITY, price in 0..=10_000_000i64, d1 in 0..=BP_ONE, d2 in 0..=BP_ONE, tax in 0..=MAX_TAX_BP,
        ) {
            let (lo, hi) = (d1.min(d2), d1.max(d2));
            let a = compute_totals(&[line(qty, price, lo)], tax).unwrap();
            let b = compute_totals(&[line(qty, price, hi)], tax).unwrap();
            prop_assert!(b.total_fen <= a.total_fen);
        }
    }
}
