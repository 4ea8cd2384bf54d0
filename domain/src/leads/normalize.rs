//! Dedup keys: the same phone or company written differently must give the same key, so a lead
//! for a customer someone already owns is recognised at intake.

/// Full-width ASCII forms (`Ａ`, `１`, `（`) and the ideographic space to their half-width twins:
/// Chinese input methods produce both, often in one name.
fn half_width(c: char) -> char {
    match c {
        '\u{3000}' => ' ',
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        _ => c,
    }
}

/// A phone number as digits only, without the China country code: `+86 138-0013-8000`,
/// `0086 13800138000` and `138 0013 8000` all give `13800138000`. `None` when fewer than 5
/// digits remain (not a number anyone can call).
pub fn phone_key(raw: &str) -> Option<String> {
    let digits: String = raw
        .chars()
        .map(half_width)
        .filter(char::is_ascii_digit)
        .collect();
    let plus = raw.trim_start().chars().map(half_width).next() == Some('+');
    let national = if let Some(rest) = digits.strip_prefix("0086") {
        rest
    } else if digits.len() == 13 && digits.starts_with("861") {
        // 86 + an 11-digit mobile number (written without the plus).
        &digits[2..]
    } else if plus && let Some(rest) = digits.strip_prefix("86") {
        rest
    } else {
        &digits
    };
    (national.len() >= 5).then(|| national.to_owned())
}

/// Legal-form suffixes and the `(中国)` marker that vary between records of one company.
/// Longest first, so `股份有限公司` is removed whole rather than leaving `股份`.
const COMPANY_SUFFIXES: [&str; 6] = [
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "股份公司",
    "(中国)",
    "(china)",
];

/// A company name reduced to what identifies it: half-width, no whitespace, ASCII lower-cased,
/// without `有限公司`/`股份有限公司`/`有限责任公司` and without `(中国)` anywhere in it.
/// `杭州某机械（中国）有限公司` and `杭州某机械有限公司 ` give the same key.
pub fn company_key(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .map(half_width)
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    // `(中国)` may sit in the middle (`某某(中国)投资有限公司`); suffixes only at the end. Loop
    // because removing one suffix can expose another (`某某(中国)有限公司`).
    s = s.replace("(中国)", "");
    loop {
        let before = s.len();
        for suffix in COMPANY_SUFFIXES {
            if let Some(stripped) = s.strip_suffix(suffix)
                && !stripped.is_empty()
            {
                s = stripped.to_owned();
            }
        }
        if s.len() == before {
            return s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn phones_lose_country_code_and_punctuation() {
        for raw in [
            "+86 138-0013-8000",
            "0086 13800138000",
            "8613800138000",
            "138 0013 8000",
            "（+86）138-0013-8000",
            "１３８００１３８０００",
        ] {
            assert_eq!(phone_key(raw).as_deref(), Some("13800138000"), "{raw}");
        }
        assert_eq!(phone_key("0571-8888 6666").as_deref(), Some("057188886666"));
        assert_eq!(phone_key("n/a"), None);
    }

    #[test]
    fn company_suffixes_and_widths_are_ignored() {
        let key = company_key("杭州某机械有限公司");
        for raw in [
            "杭州某机械（中国）有限公司",
            " 杭州某机械 股份有限公司",
            "杭州某机械(中国)",
            "杭州某机械有限责任公司",
            "杭州某机械",
        ] {
            assert_eq!(company_key(raw), key, "{raw}");
        }
        assert_eq!(
            company_key("ＡＢＣ Ｔｒａｄｉｎｇ"),
            company_key("abc trading")
        );
        assert_ne!(company_key("杭州某机械"), company_key("宁波某机械"));
        assert_eq!(company_key("有限公司"), "有限公司");
    }

    proptest! {
        #[test]
        fn company_key_is_idempotent(name in "[a-zA-Z0-9\u{4e00}-\u{4e20} （）()]{0,30}") {
            let once = company_key(&name);
            prop_assert_eq!(company_key(&once), once.clone());
        }

        #[test]
        fn company_key_ignores_whitespace_and_full_width(core in "[a-z\u{4e00}-\u{4e20}]{1,12}", spaces in proptest::collection::vec(0usize..12, 0..4)) {
            let mut spaced: Vec<char> = core.chars().collect();
            for at in spaces {
                spaced.insert(at.min(spaced.len()), ' ');
            }
            let spaced: String = spaced.into_iter().collect();
            let wide: String = core.chars().map(|c| if c.is_ascii_lowercase() { char::from_u32(c as u32 + 0xFEE0).unwrap() } else { c }).collect();
            prop_assert_eq!(company_key(&format!("{spaced}有限公司")), company_key(&core));
            prop_assert_eq!(company_key(&format!("{wide}（中国）股份有限公司")), company_key(&core));
        }

        #[test]
        fn phone_key_ignores_formatting(mobile in "1[3-9][0-9]{9}", seps in proptest::collection::vec(prop_oneof![Just(" "), Just("-"), Just("")], 11)) {
            let formatted: String = mobile.chars().zip(seps.iter()).map(|(c, s)| format!("{c}{s}")).collect();
            prop_assert_eq!(phone_key(&formatted), Some(mobile.clone()));
            prop_assert_eq!(phone_key(&format!("+86 {formatted}")), Some(mobile.clone()));
            prop_assert_eq!(phone_key(&format!("0086-{formatted}")), Some(mobile.clone()));
        }
    }
}
