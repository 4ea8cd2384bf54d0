//! Properties of the stage rules: no set of facts passes a node whose requirements do not hold
//! (unless a complete, reasoned override exists, and never by override where another party's
//! proof is missing), and evaluation is a pure function.

use fieldproof_domain::account::Role;
use fieldproof_domain::pipeline::default_template::default_template;
use fieldproof_domain::pipeline::evaluate::{
    ApprovalFact, ChecklistMark, DocumentFact, OverrideFact, PhotoFact, VisitFact,
    evaluate_requirement,
};
use fieldproof_domain::pipeline::{NodeFacts, evaluate_node};
use proptest::prelude::*;

fn role() -> impl Strategy<Value = Role> {
    prop::sample::select(Role::ALL.to_vec())
}

fn facts() -> impl Strategy<Value = NodeFacts> {
    let photo = (
        0u8..6,
        prop::option::of(any::<u64>()),
        prop::collection::vec(
            prop::sample::select(vec!["nameplate", "piping", "dimensions", "other"]),
            0..3,
        ),
    )
        .prop_map(|(n, phash, tags)| PhotoFact {
            evidence_id: format!("e{n}"),
            sha256: format!("h{n}"),
            tags: tags.into_iter().map(String::from).collect(),
            phash,
        });
    let approval = (
        role(),
        0u8..3,
        prop::option::of(prop::sample::select(vec!["q1", "q2"])),
    )
        .prop_map(|(role, u, q)| ApprovalFact {
            role,
            user_id: format!("u{u}"),
            quote_hash: q.map(String::from),
        });
    let mark = (
        prop::sample::select(vec![
            "decision_maker",
            "budget_holder",
            "technical_evaluator",
            "delivery_plan",
            "handover_meeting",
        ]),
        any::<bool>(),
    )
        .prop_map(|(k, c)| ChecklistMark {
            key: k.into(),
            contact_with_seniority: c,
        });
    (
        any::<bool>(),
        prop::collection::vec(photo, 0..6),
        prop::collection::vec(
            any::<bool>().prop_map(|s| DocumentFact {
                evidence_id: "d".into(),
                customer_signed: s,
            }),
            0..2,
        ),
        prop::collection::vec(mark, 0..5),
        prop::collection::vec(approval, 0..4),
        prop::option::of(prop::sample::select(vec!["q1", "q2"])),
        (any::<bool>(), any::<bool>(), any::<bool>()),
        prop::collection::vec(
            (
                0u8..3,
                prop::sample::select(vec!["", "  ", "customer moved the meeting"]),
            ),
            0..3,
        ),
    )
        .prop_map(
            |(
                visit,
                photos,
                documents,
                checklist,
                approvals,
                quote,
                (number, confirmed, esign),
                overrides,
            )| NodeFacts {
                visit: visit.then(|| VisitFact {
                    site_id: "s".into(),
                    contact_id: "c".into(),
                }),
                photos,
                documents,
                checklist,
                approvals,
                current_quote_hash: quote.map(String::from),
                quote_number: number.then(|| "Q2026-000001".into()),
                customer_confirmed: confirmed,
                e_signature_verified: esign,
                overrides: overrides
                    .into_iter()
                    .map(|(u, r)| OverrideFact {
                        user_id: format!("sup{u}"),
                        reason: r.into(),
                    })
                    .collect(),
            },
        )
}

proptest! {
    #[test]
    fn no_facts_pass_a_node_whose_requirements_do_not_hold(facts in facts(), node_index in 0usize..12, needed in 1usize..3) {
        let template = default_template();
        let node = &template.nodes[node_index];
        let evaluation = evaluate_node(node, &facts, needed);
        let every_requirement_holds = node.requirements.iter().all(|r| evaluate_requirement(r, &facts).met);
        let reasoned_overriders: std::collections::BTreeSet<_> = facts.overrides.iter().filter(|o| !o.reason.trim().is_empty()).map(|o| &o.user_id).collect();
        if evaluation.passed {
            prop_assert!(every_requirement_holds || reasoned_overriders.len() >= needed);
        }
        // What another party proves (the countersigned price, the quote number, the customer's
        // confirmation of the quote) is never overridden.
        let unmet_by_others = node.requirements.iter().any(|r| !r.overridable() && !evaluate_requirement(r, &facts).met);
        if unmet_by_others {
            prop_assert!(!evaluation.passed);
        }
        if every_requirement_holds {
            prop_assert!(evaluation.passed && !evaluation.by_override);
        }
    }

    #[test]
    fn no_override_stands_in_for_the_price_countersign_the_quote_or_the_customer(facts in facts(), needed in 1usize..3) {
        let template = default_template();
        for key in ["price_approved", "quote_issued", "quote_confirmed"] {
            let node = template.node(key).unwrap();
            let mut overridden = facts.clone();
            overridden.overrides = vec![
                OverrideFact { user_id: "s1".into(), reason: "phoned the customer".into() },
                OverrideFact { user_id: "s2".into(), reason: "phoned the customer".into() },
            ];
            let without = evaluate_node(node, &NodeFacts { overrides: vec![], ..overridden.clone() }, needed);
            let with = evaluate_node(node, &overridden, needed);
            prop_assert_eq!(with.passed, without.passed, "{}", key);
            prop_assert!(!with.by_override);
        }
    }

    #[test]
    fn evaluation_is_a_pure_function(facts in facts(), node_index in 0usize..12) {
        let template = default_template();
        let node = &template.nodes[node_index];
        prop_assert_eq!(evaluate_node(node, &facts, 1), evaluate_node(node, &facts.clone(), 1));
    }

    #[test]
    fn price_approval_counts_only_approvals_of_the_current_quote(hash_seen in prop::sample::select(vec!["q1", "q2"])) {
        let template = default_template();
        let node = template.node("price_approved").unwrap();
        let approvals = vec![
            ApprovalFact { role: Role::Manager, user_id: "m".into(), quote_hash: Some(hash_seen.into()) },
            ApprovalFact { role: Role::Finance, user_id: "f".into(), quote_hash: Some(hash_seen.into()) },
        ];
        let facts = NodeFacts { approvals, current_quote_hash: Some("q1".into()), ..NodeFacts::default() };
        prop_assert_eq!(evaluate_node(node, &facts, 1).passed, hash_seen == "q1");
    }
}

#[test]
fn three_distinct_tagged_photos_pass_the_site_survey_but_near_duplicates_do_not() {
    let template = default_template();
    let node = template.node("site_survey").unwrap();
    let photo = |n: u8, phash: u64, tag: &str| PhotoFact {
        evidence_id: format!("e{n}"),
        sha256: format!("h{n}"),
        tags: vec![tag.into()],
        phash: Some(phash),
    };
    let good = NodeFacts {
        photos: vec![
            photo(1, 0, "nameplate"),
            photo(2, u64::MAX, "piping"),
            photo(3, 0xFFFF_FFFF, "dimensions"),
        ],
        ..NodeFacts::default()
    };
    assert!(evaluate_node(node, &good, 1).passed);
    // The third photo is the first one re-encoded: 3 bits differ.
    let recycled = NodeFacts {
        photos: vec![
            photo(1, 0, "nameplate"),
            photo(2, u64::MAX, "piping"),
            photo(3, 0b111, "dimensions"),
        ],
        ..NodeFacts::default()
    };
    let evaluation = evaluate_node(node, &recycled, 1);
    assert!(!evaluation.passed);
    assert!(
        evaluation.requirements[0]
            .missing
            .contains(&"photos:2/3".to_owned())
    );
}
