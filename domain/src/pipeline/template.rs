//! Pipeline templates: an ordered, versioned list of action nodes. A deal keeps the version it
//! started on; editing makes a new version, never changes one in use.

use super::requirement::Requirement;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// The five classic stages, kept for reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// 初步接触
    InitialContact,
    /// 需求确认
    NeedsAnalysis,
    /// 方案演示
    Solution,
    /// 报价
    Quote,
    /// 签约
    Signing,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeTemplate {
    /// Stable snake_case key, e.g. `site_survey`.
    pub key: String,
    pub name_en: String,
    pub name_zh: String,
    pub stage: Stage,
    /// All must hold for the node to pass.
    pub requirements: Vec<Requirement>,
    /// Open longer than this and the node is stalled (rep, manager and presales are told).
    #[serde(default = "default_stall_hours")]
    pub stall_after_hours: u32,
}

fn default_stall_hours() -> u32 {
    72
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineTemplate {
    pub name: String,
    pub nodes: Vec<NodeTemplate>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error("a template needs at least one node")]
    Empty,
    #[error("node key `{0}` must be 1-64 characters of a-z, 0-9 and _")]
    BadKey(String),
    #[error("node key `{0}` appears twice")]
    DuplicateKey(String),
    #[error("node `{0}` has no requirement: every node must prove something")]
    NoRequirement(String),
    #[error("node `{0}`: stall limit must be 1-2160 hours")]
    StallLimit(String),
    #[error("node `{0}`: {1}")]
    Requirement(String, &'static str),
    #[error("node `{0}` needs a name in English and Chinese")]
    Name(String),
}

impl PipelineTemplate {
    /// Check a template before it is saved. There is no "skippable" flag to forget: a node
    /// without requirements is refused outright.
    pub fn validate(&self) -> Result<(), TemplateError> {
        if self.nodes.is_empty() {
            return Err(TemplateError::Empty);
        }
        let mut seen = HashSet::new();
        for node in &self.nodes {
            let key_ok = !node.key.is_empty()
                && node.key.len() <= 64
                && node
                    .key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !key_ok {
                return Err(TemplateError::BadKey(node.key.clone()));
            }
            if !seen.insert(node.key.as_str()) {
                return Err(TemplateError::DuplicateKey(node.key.clone()));
            }
            if node.name_en.trim().is_empty() || node.name_zh.trim().is_empty() {
                return Err(TemplateError::Name(node.key.clone()));
            }
            if node.requirements.is_empty() {
                return Err(TemplateError::NoRequirement(node.key.clone()));
            }
            if !(1..=2160).contains(&node.stall_after_hours) {
                return Err(TemplateError::StallLimit(node.key.clone()));
            }
            for requirement in &node.requirements {
                check_requirement(requirement)
                    .map_err(|why| TemplateError::Requirement(node.key.clone(), why))?;
            }
        }
        Ok(())
    }

    pub fn position(&self, key: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.key == key)
    }

    pub fn node(&self, key: &str) -> Option<&NodeTemplate> {
        self.nodes.iter().find(|n| n.key == key)
    }
}

fn check_requirement(requirement: &Requirement) -> Result<(), &'static str> {
    match requirement {
        Requirement::PhotoSet {
            min_photos,
            tags,
            policy,
        } => {
            if !(1..=50).contains(min_photos) {
                return Err("photo_set.min_photos must be 1-50");
            }
            if policy.near_duplicate_max_distance > crate::evidence::phash::MAX_NEAR_DISTANCE {
                // The duplicate search finds every photo within 15 bits, not further.
                return Err("photo_set.policy.near_duplicate_max_distance must be 0-15");
            }
            if tags.len() as u32 > *min_photos {
                return Err("photo_set cannot require more tags than photos");
            }
            Ok(())
        }
        Requirement::Checklist { items } => {
            if items.is_empty() {
                return Err("a checklist needs items");
            }
            let mut keys = HashSet::new();
            if items
                .iter()
                .any(|i| i.key.is_empty() || !keys.insert(i.key.as_str()))
            {
                return Err("checklist item keys must be non-empty and unique");
            }
            Ok(())
        }
        Requirement::Approval { roles, .. } => {
            let distinct: HashSet<_> = roles.iter().collect();
            if roles.is_empty() || distinct.len() != roles.len() {
                return Err("an approval needs one or more distinct roles");
            }
            Ok(())
        }
        Requirement::VisitBooking
        | Requirement::Document
        | Requirement::SignedDocument { .. }
        | Requirement::QuoteNumber
        | Requirement::CustomerConfirmation
        | Requirement::ESignature => Ok(()),
    }
}
