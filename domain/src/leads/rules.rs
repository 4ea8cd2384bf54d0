//! Rule sets: ordered layers, each a conjunction of typed conditions over the lead's tags and
//! the rep's attributes. Stored as versioned JSON; [`RuleSet::parse`] turns the JSON into these
//! types and reports every problem with its path, so a manager sees all mistakes at once.

use super::tags::{Industry, ResponseSpeed, SourceChannel};
use crate::customer::{Fen, Seniority};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Protection window when neither the layer nor the rule set says otherwise.
pub const DEFAULT_PROTECTION_HOURS: u32 = 24;
pub const MAX_LAYERS: usize = 100;
pub const MAX_CONDITIONS: usize = 20;
pub const MAX_VALUES: usize = 200;
/// A protection window longer than 30 days would keep a lead from the pool for good.
pub const MAX_PROTECTION_HOURS: u32 = 720;

/// A whole rule set: the first layer that yields candidates decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSet {
    pub layers: Vec<Layer>,
    /// Hours of exclusive protection for layers that do not set their own.
    #[serde(default = "default_protection_hours")]
    pub protection_hours: u32,
}

fn default_protection_hours() -> u32 {
    DEFAULT_PROTECTION_HOURS
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    pub name: String,
    /// All must hold (an empty list matches every lead and every eligible rep).
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protection_hours: Option<u32>,
}

/// One typed condition. `field` says what it looks at; lead conditions filter leads, `rep_*`
/// conditions filter reps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "field", rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    Source {
        r#in: Vec<SourceChannel>,
    },
    Industry {
        r#in: Vec<Industry>,
    },
    /// Estimated annual purchase within `[at_least, below)`, fen.
    AnnualPurchaseFen {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at_least: Option<Fen>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        below: Option<Fen>,
    },
    Seniority {
        r#in: Vec<Seniority>,
    },
    /// The lead's province, e.g. `["浙江", "江苏"]` (suffixes like 省 are ignored).
    Province {
        r#in: Vec<String>,
    },
    City {
        r#in: Vec<String>,
    },
    ResponseSpeed {
        r#in: Vec<ResponseSpeed>,
    },
    /// The rep belongs to one of these teams (team name or id).
    RepTeam {
        r#in: Vec<String>,
    },
    /// The rep's profile regions include the lead's province or city.
    RepCoversLeadRegion {},
    /// The rep knows at least one of these product lines.
    RepExpertise {
        any_of: Vec<String>,
    },
    /// The rep has fewer than `below` leads waiting for a first follow-up (待跟进).
    RepPendingLeads {
        below: u32,
    },
    /// The rep's load is under this percentage of capacity.
    RepLoadPercent {
        below: u32,
    },
}

impl Condition {
    /// The `field` name as written in the JSON.
    pub fn field(&self) -> &'static str {
        match self {
            Condition::Source { .. } => "source",
            Condition::Industry { .. } => "industry",
            Condition::AnnualPurchaseFen { .. } => "annual_purchase_fen",
            Condition::Seniority { .. } => "seniority",
            Condition::Province { .. } => "province",
            Condition::City { .. } => "city",
            Condition::ResponseSpeed { .. } => "response_speed",
            Condition::RepTeam { .. } => "rep_team",
            Condition::RepCoversLeadRegion {} => "rep_covers_lead_region",
            Condition::RepExpertise { .. } => "rep_expertise",
            Condition::RepPendingLeads { .. } => "rep_pending_leads",
            Condition::RepLoadPercent { .. } => "rep_load_percent",
        }
    }

    /// Whether it looks only at the lead (true) or at the rep (false).
    pub fn is_lead_condition(&self) -> bool {
        match self {
            Condition::Source { .. }
            | Condition::Industry { .. }
            | Condition::AnnualPurchaseFen { .. }
            | Condition::Seniority { .. }
            | Condition::Province { .. }
            | Condition::City { .. }
            | Condition::ResponseSpeed { .. } => true,
            Condition::RepTeam { .. }
            | Condition::RepCoversLeadRegion {}
            | Condition::RepExpertise { .. }
            | Condition::RepPendingLeads { .. }
            | Condition::RepLoadPercent { .. } => false,
        }
    }
}

/// One problem in a rule set, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleError {
    /// JSON path, e.g. `layers[1].conditions[0]`.
    pub path: String,
    pub message: String,
}

/// What validation must know about the org: the teams a `rep_team` condition may name.
pub struct RuleContext<'a> {
    /// `(id, name)` of every team.
    pub teams: &'a [(String, String)],
}

impl RuleSet {
    /// Parse and validate stored or submitted JSON, collecting every error (not just the first).
    pub fn parse(json: &Value, ctx: &RuleContext<'_>) -> Result<RuleSet, Vec<RuleError>> {
        let mut errors = Vec::new();
        let err = |errors: &mut Vec<RuleError>, path: String, message: String| {
            errors.push(RuleError { path, message })
        };
        let Some(obj) = json.as_object() else {
            return Err(vec![RuleError {
                path: "$".into(),
                message: "a rule set is a JSON object with `layers`".into(),
            }]);
        };
        for key in obj.keys() {
            if key != "layers" && key != "protection_hours" {
                err(
                    &mut errors,
                    key.clone(),
                    "unknown key (expected `layers`, `protection_hours`)".into(),
                );
            }
        }
        let protection_hours = match obj.get("protection_hours") {
            None => DEFAULT_PROTECTION_HOURS,
            Some(v) => hours(v, "protection_hours", &mut errors),
        };
        let mut layers = Vec::new();
        match obj.get("layers").and_then(Value::as_array) {
            None => err(
                &mut errors,
                "layers".into(),
                "required: an array of layers".into(),
            ),
            Some(raw) if raw.is_empty() || raw.len() > MAX_LAYERS => err(
                &mut errors,
                "layers".into(),
                format!("1 to {MAX_LAYERS} layers (got {})", raw.len()),
            ),
            Some(raw) => {
                for (i, layer) in raw.iter().enumerate() {
                    if let Some(l) = parse_layer(layer, &format!("layers[{i}]"), ctx, &mut errors) {
                        layers.push(l);
                    }
                }
            }
        }
        let mut names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
        names.sort_unstable();
        for pair in names.windows(2) {
            if pair[0] == pair[1] {
                err(
                    &mut errors,
                    "layers".into(),
                    format!("layer name `{}` is used twice", pair[0]),
                );
            }
        }
        if errors.is_empty() {
            Ok(RuleSet {
                layers,
                protection_hours,
            })
        } else {
            Err(errors)
        }
    }

    /// Hours of protection a lead assigned by `layer` gets.
    pub fn protection_hours_of(&self, layer: usize) -> u32 {
        self.layers
            .get(layer)
            .and_then(|l| l.protection_hours)
            .unwrap_or(self.protection_hours)
    }

    /// The rule set used when an org has saved none: one layer, every available rep.
    pub fn everyone() -> RuleSet {
        RuleSet {
            layers: vec![Layer {
                name: "everyone".into(),
                conditions: Vec::new(),
                protection_hours: None,
            }],
            protection_hours: DEFAULT_PROTECTION_HOURS,
        }
    }
}

fn hours(v: &Value, path: &str, errors: &mut Vec<RuleError>) -> u32 {
    match v.as_u64() {
        Some(h) if (1..=u64::from(MAX_PROTECTION_HOURS)).contains(&h) => h as u32,
        _ => {
            errors.push(RuleError {
                path: path.into(),
                message: format!("whole hours from 1 to {MAX_PROTECTION_HOURS}"),
            });
            DEFAULT_PROTECTION_HOURS
        }
    }
}

fn parse_layer(
    v: &Value,
    path: &str,
    ctx: &RuleContext<'_>,
    errors: &mut Vec<RuleError>,
) -> Option<Layer> {
    let before = errors.len();
    let Some(obj) = v.as_object() else {
        errors.push(RuleError {
            path: path.into(),
            message: "a layer is an object with `name` and `conditions`".into(),
        });
        return None;
    };
    for key in obj.keys() {
        if !["name", "conditions", "protection_hours"].contains(&key.as_str()) {
            errors.push(RuleError {
                path: format!("{path}.{key}"),
                message: "unknown key".into(),
            });
        }
    }
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("");
    if name.is_empty() || name.chars().count() > 100 {
        errors.push(RuleError {
            path: format!("{path}.name"),
            message: "required, 1-100 characters".into(),
        });
    }
    let protection_hours = obj
        .get("protection_hours")
        .filter(|v| !v.is_null())
        .map(|v| hours(v, &format!("{path}.protection_hours"), errors));
    let raw_conditions = match obj.get("conditions") {
        None => Vec::new(),
        Some(Value::Array(items)) if items.len() <= MAX_CONDITIONS => items.clone(),
        Some(_) => {
            errors.push(RuleError {
                path: format!("{path}.conditions"),
                message: format!("an array of at most {MAX_CONDITIONS} conditions"),
            });
            Vec::new()
        }
    };
    let mut conditions = Vec::new();
    for (j, raw) in raw_conditions.into_iter().enumerate() {
        let cpath = format!("{path}.conditions[{j}]");
        match serde_json::from_value::<Condition>(raw) {
            Ok(c) => {
                if let Some(message) = check_condition(&c, ctx) {
                    errors.push(RuleError {
                        path: cpath,
                        message,
                    });
                } else {
                    conditions.push(c);
                }
            }
            Err(e) => errors.push(RuleError {
                path: cpath,
                message: e.to_string(),
            }),
        }
    }
    (errors.len() == before).then(|| Layer {
        name: name.to_owned(),
        conditions,
        protection_hours,
    })
}

/// Semantic checks serde cannot make: non-empty lists, sane bounds, teams that exist.
fn check_condition(c: &Condition, ctx: &RuleContext<'_>) -> Option<String> {
    fn list<T>(values: &[T]) -> Option<String> {
        (values.is_empty() || values.len() > MAX_VALUES)
            .then(|| format!("`in` lists 1 to {MAX_VALUES} values"))
    }
    match c {
        Condition::Source { r#in } => list(r#in),
        Condition::Industry { r#in } => list(r#in),
        Condition::Seniority { r#in } => list(r#in),
        Condition::ResponseSpeed { r#in } => list(r#in),
        Condition::Province { r#in } | Condition::City { r#in } => list(r#in).or_else(|| {
            r#in.iter()
                .any(|p| p.trim().is_empty())
                .then(|| "place names must not be blank".to_owned())
        }),
        Condition::AnnualPurchaseFen { at_least, below } => match (at_least, below) {
            (None, None) => Some("give `at_least`, `below` or both (fen)".into()),
            (Some(a), Some(b)) if a >= b => Some("`at_least` must be below `below`".into()),
            _ => None,
        },
        Condition::RepTeam { r#in } => list(r#in).or_else(|| {
            let unknown: Vec<&str> = r#in
                .iter()
                .filter(|t| !ctx.teams.iter().any(|(id, name)| id == *t || name == *t))
                .map(String::as_str)
                .collect();
            (!unknown.is_empty()).then(|| format!("no such team: {}", unknown.join(", ")))
        }),
        Condition::RepCoversLeadRegion {} => None,
        Condition::RepExpertise { any_of } => (any_of.is_empty() || any_of.len() > MAX_VALUES)
            .then(|| format!("`any_of` lists 1 to {MAX_VALUES} product lines")),
        Condition::RepPendingLeads { below } => {
            (*below == 0).then(|| "`below` must be at least 1".into())
        }
        Condition::RepLoadPercent { below } => {
            (*below == 0 || *below > 100).then(|| "`below` is a percentage from 1 to 100".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn teams() -> Vec<(String, String)> {
        vec![("t1".into(), "East-China Key Accounts".into())]
    }

    /// The four layers of issue 6, as documented in docs/leads.md.
    pub fn issue_example() -> Value {
        json!({
          "protection_hours": 24,
          "layers": [
            {"name": "website manufacturing", "conditions": [
              {"field": "source", "in": ["website"]},
              {"field": "industry", "in": ["manufacturing"]}
            ]},
            {"name": "large accounts", "conditions": [
              {"field": "annual_purchase_fen", "at_least": 80000000}
            ]},
            {"name": "east china key accounts", "conditions": [
              {"field": "rep_team", "in": ["East-China Key Accounts"]}
            ]},
            {"name": "reps with room", "conditions": [
              {"field": "rep_pending_leads", "below": 5}
            ]}
          ]
        })
    }

    #[test]
    fn the_issue_example_parses() {
        let teams = teams();
        let rules = RuleSet::parse(&issue_example(), &RuleContext { teams: &teams }).unwrap();
        assert_eq!(rules.layers.len(), 4);
        assert_eq!(rules.protection_hours_of(3), 24);
        // and round-trips through its own serialisation
        let again = RuleSet::parse(
            &serde_json::to_value(&rules).unwrap(),
            &RuleContext { teams: &teams },
        )
        .unwrap();
        assert_eq!(again, rules);
    }

    #[test]
    fn every_mistake_is_reported_with_its_path() {
        let teams = teams();
        let bad = json!({"layers": [
            {"name": "", "conditions": [{"field": "industry", "in": ["bakery"]}]},
            {"name": "b", "conditions": [
                {"field": "annual_purchase_fen", "at_least": 5, "below": 5},
                {"field": "rep_team", "in": ["Nowhere"]},
                {"field": "colour", "in": ["red"]},
                {"field": "source", "in": ["website"], "extra": 1}
            ], "protection_hours": 0}
        ]});
        let errors = RuleSet::parse(&bad, &RuleContext { teams: &teams }).unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "layers[0].name",
                "layers[0].conditions[0]",
                "layers[1].protection_hours",
                "layers[1].conditions[0]",
                "layers[1].conditions[1]",
                "layers[1].conditions[2]",
                "layers[1].conditions[3]",
            ],
            "{errors:#?}"
        );
        assert!(
            errors[1].message.contains("bakery"),
            "{}",
            errors[1].message
        );
        assert!(errors[4].message.contains("Nowhere"));
    }

    #[test]
    fn empty_and_duplicate_layers_are_refused() {
        let ctx = RuleContext { teams: &[] };
        assert!(RuleSet::parse(&json!({"layers": []}), &ctx).is_err());
        assert!(RuleSet::parse(&json!([]), &ctx).is_err());
        let twice = json!({"layers": [{"name": "a"}, {"name": "a"}]});
        assert_eq!(
            RuleSet::parse(&twice, &ctx).unwrap_err()[0].message,
            "layer name `a` is used twice"
        );
    }
}
