//! Whether a node passes, from the facts the server gathered for its current run.

use super::requirement::Requirement;
use super::template::NodeTemplate;
use crate::account::Role;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Everything proven so far for one run of one node. The server fills it from stored evidence,
/// approvals and callbacks; nothing else feeds the decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeFacts {
    pub visit: Option<VisitFact>,
    /// Photos whose evidence passed or was approved on review.
    pub photos: Vec<PhotoFact>,
    pub documents: Vec<DocumentFact>,
    pub checklist: Vec<ChecklistMark>,
    pub approvals: Vec<ApprovalFact>,
    /// Content hash of the deal's current quote (draft or issued), if any.
    pub current_quote_hash: Option<String>,
    /// System number of the current quote once issued.
    pub quote_number: Option<String>,
    /// The customer confirmed the current quote revision (or, for other nodes, the content
    /// the node asks them to confirm).
    pub customer_confirmed: bool,
    pub e_signature_verified: bool,
    /// Supervisor overrides of this run, each with its reason.
    pub overrides: Vec<OverrideFact>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitFact {
    pub site_id: String,
    pub contact_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoFact {
    pub evidence_id: String,
    pub sha256: String,
    pub tags: Vec<String>,
    /// 64-bit perceptual hash, when pixels were available.
    pub phash: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentFact {
    pub evidence_id: String,
    pub customer_signed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistMark {
    pub key: String,
    /// The contact named for this item has a seniority on record.
    pub contact_with_seniority: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalFact {
    pub role: Role,
    pub user_id: String,
    /// The quote content hash the approver saw, for approvals bound to a quote.
    pub quote_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideFact {
    pub user_id: String,
    pub reason: String,
}

/// One requirement's state, with what is still missing (machine-readable keys).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequirementStatus {
    pub kind: &'static str,
    pub met: bool,
    pub missing: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeEvaluation {
    pub requirements: Vec<RequirementStatus>,
    /// Every requirement holds, or a complete override exists.
    pub passed: bool,
    /// Passed only because of a supervisor override.
    pub by_override: bool,
}

/// The kinds of `node`'s unmet requirements that no override can stand in for
/// ([`Requirement::overridable`]), in template order.
pub fn unmet_not_overridable(
    node: &NodeTemplate,
    statuses: &[RequirementStatus],
) -> Vec<&'static str> {
    node.requirements
        .iter()
        .zip(statuses)
        .filter(|(r, s)| !s.met && !r.overridable())
        .map(|(r, _)| r.kind())
        .collect()
}

/// Judge a node. `override_approvers_needed` is 1, or 2 above the deal value that needs a
/// second approver; overrides by the same person count once and must carry a reason. An
/// override passes the node only while every unmet requirement is one it may stand in for.
pub fn evaluate_node(
    node: &NodeTemplate,
    facts: &NodeFacts,
    override_approvers_needed: usize,
) -> NodeEvaluation {
    let requirements: Vec<RequirementStatus> = node
        .requirements
        .iter()
        .map(|r| evaluate_requirement(r, facts))
        .collect();
    let all_met = requirements.iter().all(|s| s.met);
    let override_approvers: BTreeSet<&str> = facts
        .overrides
        .iter()
        .filter(|o| !o.reason.trim().is_empty())
        .map(|o| o.user_id.as_str())
        .collect();
    let overridden = override_approvers_needed > 0
        && override_approvers.len() >= override_approvers_needed
        && unmet_not_overridable(node, &requirements).is_empty();
    NodeEvaluation {
        passed: all_met || overridden,
        by_override: !all_met && overridden,
        requirements,
    }
}

fn status(kind: &'static str, missing: Vec<String>) -> RequirementStatus {
    RequirementStatus {
        kind,
        met: missing.is_empty(),
        missing,
    }
}

pub fn evaluate_requirement(requirement: &Requirement, facts: &NodeFacts) -> RequirementStatus {
    let kind = requirement.kind();
    match requirement {
        Requirement::VisitBooking => status(
            kind,
            if facts.visit.is_some() {
                vec![]
            } else {
                vec!["visit".into()]
            },
        ),
        Requirement::PhotoSet {
            min_photos,
            tags,
            policy,
        } => {
            let distinct = distinct_photos(&facts.photos, policy.near_duplicate_max_distance);
            let mut missing = Vec::new();
            if (distinct.len() as u32) < *min_photos {
                missing.push(format!("photos:{}/{}", distinct.len(), min_photos));
            }
            for tag in tags {
                if !distinct.iter().any(|p| p.tags.contains(tag)) {
                    missing.push(format!("tag:{tag}"));
                }
            }
            status(kind, missing)
        }
        Requirement::Document => status(
            kind,
            if facts.documents.is_empty() {
                vec!["document".into()]
            } else {
                vec![]
            },
        ),
        Requirement::SignedDocument {
            or_customer_confirmation,
        } => {
            let signed = facts.documents.iter().any(|d| d.customer_signed);
            let ok = signed || (*or_customer_confirmation && facts.customer_confirmed);
            status(
                kind,
                if ok {
                    vec![]
                } else {
                    vec!["customer_signed_document".into()]
                },
            )
        }
        Requirement::Checklist { items } => {
            let missing = items
                .iter()
                .filter(|item| {
                    !facts.checklist.iter().any(|m| {
                        m.key == item.key && (!item.needs_contact || m.contact_with_seniority)
                    })
                })
                .map(|item| format!("item:{}", item.key))
                .collect();
            status(kind, missing)
        }
        Requirement::Approval {
            roles,
            bound_to_quote,
        } => {
            let missing = roles
                .iter()
                .filter(|role| {
                    !facts.approvals.iter().any(|a| {
                        a.role == **role
                            && (!*bound_to_quote
                                || (facts.current_quote_hash.is_some()
                                    && a.quote_hash == facts.current_quote_hash))
                    })
                })
                .map(|role| format!("approval:{role}"))
                .collect();
            status(kind, missing)
        }
        Requirement::QuoteNumber => status(
            kind,
            if facts.quote_number.is_some() {
                vec![]
            } else {
                vec!["quote_number".into()]
            },
        ),
        Requirement::CustomerConfirmation => status(
            kind,
            if facts.customer_confirmed {
                vec![]
            } else {
                vec!["customer_confirmation".into()]
            },
        ),
        Requirement::ESignature => status(
            kind,
            if facts.e_signature_verified {
                vec![]
            } else {
                vec!["e_signature".into()]
            },
        ),
    }
}

/// Photos that count: one per content hash, and none within `max_distance` (perceptual
/// Hamming distance) of a photo already counted, in the order given.
pub fn distinct_photos(photos: &[PhotoFact], max_distance: u32) -> Vec<&PhotoFact> {
    let mut kept: Vec<&PhotoFact> = Vec::new();
    for photo in photos {
        let duplicate = kept.iter().any(|k| {
            k.sha256 == photo.sha256
                || matches!((k.phash, photo.phash), (Some(a), Some(b)) if (a ^ b).count_ones() <= max_distance)
        });
        if !duplicate {
            kept.push(photo);
        }
    }
    kept
}
