//! The default 12-node pipeline: five vague stages made into atomic, verifiable actions.

use super::requirement::{ChecklistItem, Requirement};
use super::template::{NodeTemplate, PipelineTemplate, Stage};
use crate::account::Role;
use crate::evidence::policy::NodePolicy;

fn node(
    key: &str,
    name_en: &str,
    name_zh: &str,
    stage: Stage,
    requirements: Vec<Requirement>,
) -> NodeTemplate {
    NodeTemplate {
        key: key.into(),
        name_en: name_en.into(),
        name_zh: name_zh.into(),
        stage,
        requirements,
        stall_after_hours: 72,
    }
}

fn item(key: &str, en: &str, zh: &str, needs_contact: bool) -> ChecklistItem {
    ChecklistItem {
        key: key.into(),
        label_en: en.into(),
        label_zh: zh.into(),
        needs_contact,
    }
}

pub fn default_template() -> PipelineTemplate {
    use Stage::*;
    PipelineTemplate {
        name: "default".into(),
        nodes: vec![
            node(
                "visit_booked",
                "Visit booked",
                "预约拜访",
                InitialContact,
                vec![Requirement::VisitBooking],
            ),
            node(
                "site_survey",
                "Site survey",
                "现场勘测",
                InitialContact,
                vec![Requirement::PhotoSet {
                    min_photos: 3,
                    tags: vec!["nameplate".into(), "piping".into(), "dimensions".into()],
                    policy: NodePolicy::default(),
                }],
            ),
            node(
                "pain_points_confirmed",
                "Pain points confirmed",
                "痛点清单确认",
                NeedsAnalysis,
                vec![Requirement::SignedDocument {
                    or_customer_confirmation: true,
                }],
            ),
            node(
                "decision_chain_mapped",
                "Decision chain mapped",
                "决策链确认",
                NeedsAnalysis,
                vec![Requirement::Checklist {
                    items: vec![
                        item("decision_maker", "Decision maker", "决策人", true),
                        item("budget_holder", "Budget holder", "预算负责人", true),
                        item(
                            "technical_evaluator",
                            "Technical evaluator",
                            "技术评估人",
                            true,
                        ),
                    ],
                }],
            ),
            node(
                "solution_submitted",
                "Solution submitted",
                "定制方案提交",
                Solution,
                vec![Requirement::Document],
            ),
            node(
                "presales_review",
                "Presales review",
                "售前评审",
                Solution,
                vec![Requirement::Approval {
                    roles: vec![Role::Presales],
                    bound_to_quote: false,
                }],
            ),
            node(
                "price_approved",
                "Price approved",
                "价格审批",
                Quote,
                vec![Requirement::Approval {
                    roles: vec![Role::Manager, Role::Finance],
                    bound_to_quote: true,
                }],
            ),
            node(
                "quote_issued",
                "Quote issued",
                "报价单生成",
                Quote,
                vec![Requirement::QuoteNumber],
            ),
            node(
                "quote_confirmed",
                "Quote confirmed by customer",
                "客户确认报价",
                Quote,
                vec![Requirement::CustomerConfirmation],
            ),
            node(
                "contract_reviewed",
                "Contract reviewed",
                "合同审核",
                Signing,
                vec![Requirement::Approval {
                    roles: vec![Role::Manager],
                    bound_to_quote: false,
                }],
            ),
            node(
                "contract_signed",
                "Contract signed",
                "合同用印",
                Signing,
                vec![Requirement::ESignature],
            ),
            node(
                "delivery_handover",
                "Delivery handover",
                "交付移交",
                Signing,
                vec![
                    Requirement::Checklist {
                        items: vec![
                            item(
                                "delivery_plan",
                                "Delivery plan agreed",
                                "交付计划已确认",
                                false,
                            ),
                            item(
                                "handover_meeting",
                                "Handover meeting held",
                                "交接会已召开",
                                false,
                            ),
                        ],
                    },
                    Requirement::SignedDocument {
                        or_customer_confirmation: true,
                    },
                ],
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_template_is_valid_and_has_twelve_nodes() {
        let t = default_template();
        assert_eq!(t.validate(), Ok(()));
        assert_eq!(t.nodes.len(), 12);
        assert_eq!(t.nodes[1].key, "site_survey");
        assert_eq!(t.nodes[11].key, "delivery_handover");
    }

    #[test]
    fn a_near_duplicate_distance_beyond_what_the_search_finds_is_refused() {
        use crate::pipeline::template::TemplateError;
        let with_distance = |d: u32| {
            let mut t = default_template();
            for r in &mut t.nodes[1].requirements {
                if let Requirement::PhotoSet { policy, .. } = r {
                    policy.near_duplicate_max_distance = d;
                }
            }
            t.validate()
        };
        assert_eq!(with_distance(15), Ok(()));
        assert_eq!(
            with_distance(16),
            Err(TemplateError::Requirement(
                "site_survey".into(),
                "photo_set.policy.near_duplicate_max_distance must be 0-15"
            ))
        );
    }

    #[test]
    fn a_template_survives_a_json_round_trip() {
        let t = default_template();
        let json = serde_json::to_string(&t).unwrap();
        let back: PipelineTemplate = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
    }
}
