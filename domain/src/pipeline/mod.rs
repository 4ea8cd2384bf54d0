//! The stage engine's pure rules: versioned pipeline templates of action nodes, typed
//! requirements, and the function that says whether a node passes given what has been proven.
//!
//! Nothing here can be told "mark this node passed": a node passes only when [`evaluate_node`]
//! finds every requirement met (or a complete, reasoned supervisor override).

pub mod default_template;
pub mod evaluate;
pub mod requirement;
pub mod template;

pub use evaluate::{
    NodeEvaluation, NodeFacts, RequirementStatus, evaluate_node, unmet_not_overridable,
};
pub use requirement::Requirement;
pub use template::{NodeTemplate, PipelineTemplate, Stage, TemplateError};
