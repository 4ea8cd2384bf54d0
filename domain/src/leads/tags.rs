//! The typed tags a lead carries: each is a closed set (or a parsed value), never a free string,
//! so a rule can only name values that exist and a typo is a validation error, not a silent miss.

use crate::customer::{Fen, Seniority};
use serde::{Deserialize, Serialize};
use std::fmt;
use time::{Duration, OffsetDateTime};

macro_rules! tag_enum {
    ($(#[$doc:meta])* $name:ident { $( $(#[$vdoc:meta])* $variant:ident => $code:literal [$($alias:literal),*], )* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $( $(#[$vdoc])* $variant, )* }

        impl $name {
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )* ];

            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $code, )* }
            }

            /// Parse the code or one of its everyday names (Chinese or English, any case), as
            /// they appear in a spreadsheet column.
            pub fn parse_loose(raw: &str) -> Option<$name> {
                let s = raw.trim().to_lowercase();
                match s.as_str() {
                    $( $code $(| $alias)* => Some($name::$variant), )*
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

tag_enum! {
    /// The customer's industry.
    Industry {
        Manufacturing => "manufacturing" ["制造业", "制造", "工业"],
        Retail => "retail" ["零售", "快消"],
        Wholesale => "wholesale" ["批发", "经销", "贸易"],
        Healthcare => "healthcare" ["医疗", "医药", "医疗器械"],
        Education => "education" ["教育"],
        Energy => "energy" ["能源", "新能源", "电力"],
        Construction => "construction" ["建筑", "建材", "房地产"],
        Logistics => "logistics" ["物流", "运输"],
        It => "it" ["信息技术", "互联网", "软件"],
        Finance => "finance" ["金融", "银行", "保险"],
        Government => "government" ["政府", "政务", "事业单位"],
        Agriculture => "agriculture" ["农业"],
        Food => "food" ["食品", "餐饮"],
        Chemicals => "chemicals" ["化工"],
        Other => "other" ["其他", "其它"],
    }
}

tag_enum! {
    /// Where the lead came from.
    SourceChannel {
        /// The website's contact form (官网表单).
        Website => "website" ["官网", "官网表单", "网站"],
        Referral => "referral" ["转介绍", "老客户转介绍", "推荐"],
        TradeShow => "trade_show" ["展会", "展会扫码"],
        ColdCall => "cold_call" ["电话陌拜", "陌拜", "电话"],
        Wechat => "wechat" ["微信", "企业微信", "公众号"],
        Partner => "partner" ["渠道", "合作伙伴", "代理商"],
        /// A spreadsheet import with no source column.
        Import => "import" ["导入"],
        Other => "other" ["其他", "其它"],
    }
}

tag_enum! {
    /// How quickly the customer has answered in the past (from logged activities).
    ResponseSpeed {
        /// Typical gap between follow-ups at most a day.
        Fast => "fast" ["快"],
        /// At most three days.
        Normal => "normal" ["一般", "中"],
        Slow => "slow" ["慢"],
        /// Fewer than two activities on record.
        Unknown => "unknown" ["未知"],
    }
}

impl ResponseSpeed {
    /// The customer's response speed from the times of past activities with them: the median
    /// gap between consecutive activities. A median resists one long holiday or one burst of calls.
    pub fn from_activity_times(times: &[OffsetDateTime]) -> ResponseSpeed {
        if times.len() < 2 {
            return ResponseSpeed::Unknown;
        }
        let mut sorted = times.to_vec();
        sorted.sort();
        let mut gaps: Vec<Duration> = sorted.windows(2).map(|w| w[1] - w[0]).collect();
        gaps.sort();
        let median = gaps[gaps.len() / 2];
        if median <= Duration::hours(24) {
            ResponseSpeed::Fast
        } else if median <= Duration::hours(72) {
            ResponseSpeed::Normal
        } else {
            ResponseSpeed::Slow
        }
    }
}

/// Province and (optionally) city, normalised so `浙江省` and `浙江` are the same place.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Region {
    pub province: String,
    pub city: String,
}

impl Region {
    pub fn new(province: &str, city: &str) -> Region {
        Region {
            province: place_key(province),
            city: place_key(city),
        }
    }

    /// Whether a rep covering `area` (a province or a city, as written on a rep profile) covers
    /// this region.
    pub fn covered_by(&self, area: &str) -> bool {
        // Called for every rep at every layer that looks at regions: no allocation when the
        // profile's name has no spaces (the usual case).
        let area = place_key_cow(area);
        !area.is_empty() && (*area == *self.province || *area == *self.city)
    }
}

/// A place name without its administrative suffix or spaces: `浙江省` → `浙江`, `杭州市` → `杭州`,
/// `广西壮族自治区` → `广西`. Rules and rep profiles compare these keys.
pub fn place_key(raw: &str) -> String {
    place_key_cow(raw).into_owned()
}

fn place_key_cow(raw: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let s: Cow<'_, str> = if raw.chars().any(char::is_whitespace) {
        Cow::Owned(raw.chars().filter(|c| !c.is_whitespace()).collect())
    } else {
        Cow::Borrowed(raw)
    };
    for suffix in [
        "壮族自治区",
        "回族自治区",
        "维吾尔自治区",
        "特别行政区",
        "自治区",
        "省",
        "市",
    ] {
        if let Some(stripped) = s.strip_suffix(suffix)
            && !stripped.is_empty()
        {
            return match s {
                Cow::Borrowed(b) => Cow::Borrowed(&b[..stripped.len()]),
                Cow::Owned(ref o) => Cow::Owned(o[..stripped.len()].to_owned()),
            };
        }
    }
    s
}

/// Everything rules may look at on the lead's side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadTags {
    pub industry: Industry,
    pub source: SourceChannel,
    pub annual_purchase: Fen,
    pub seniority: Seniority,
    pub region: Region,
    pub response_speed: ResponseSpeed,
    /// Product lines the lead asked about (matched against rep expertise).
    #[serde(default)]
    pub products: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn everyday_names_parse_to_tags() {
        assert_eq!(
            Industry::parse_loose("制造业"),
            Some(Industry::Manufacturing)
        );
        assert_eq!(
            Industry::parse_loose(" Manufacturing "),
            Some(Industry::Manufacturing)
        );
        assert_eq!(
            SourceChannel::parse_loose("官网表单"),
            Some(SourceChannel::Website)
        );
        assert_eq!(Industry::parse_loose("烘焙"), None);
        for i in Industry::ALL {
            assert_eq!(Industry::parse_loose(i.as_str()), Some(*i));
        }
    }

    #[test]
    fn place_keys_drop_suffixes() {
        assert_eq!(place_key("浙江省"), "浙江");
        assert_eq!(place_key(" 杭州 市"), "杭州");
        assert_eq!(place_key("广西壮族自治区"), "广西");
        assert_eq!(place_key("市"), "市");
        assert!(Region::new("浙江省", "杭州市").covered_by("浙江"));
        assert!(Region::new("浙江", "杭州").covered_by("杭州市"));
        assert!(!Region::new("浙江", "").covered_by(""));
    }

    #[test]
    fn response_speed_uses_the_median_gap() {
        let t = datetime!(2026-01-01 00:00 UTC);
        assert_eq!(
            ResponseSpeed::from_activity_times(&[t]),
            ResponseSpeed::Unknown
        );
        let fast = [
            t,
            t + Duration::hours(3),
            t + Duration::hours(10),
            t + Duration::days(30),
        ];
        assert_eq!(
            ResponseSpeed::from_activity_times(&fast),
            ResponseSpeed::Fast
        );
        let slow = [t, t + Duration::days(5), t + Duration::days(11)];
        assert_eq!(
            ResponseSpeed::from_activity_times(&slow),
            ResponseSpeed::Slow
        );
    }
}
