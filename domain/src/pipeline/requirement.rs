//! Requirement kinds: what must be proven for a node to pass. Stored as tagged JSON in a
//! template (`{"kind": "photo_set", "min_photos": 3, ...}`).

use crate::account::Role;
use crate::evidence::policy::NodePolicy;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Requirement {
    /// A visit is booked: a site, a contact and a time window (the window later judges photos).
    VisitBooking,
    /// At least `min_photos` distinct photos whose evidence passed (or a supervisor approved),
    /// no two near-duplicates of each other, covering every tag in `tags`.
    PhotoSet {
        min_photos: u32,
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default)]
        policy: NodePolicy,
    },
    /// A document (a proposal PDF, say) uploaded as evidence.
    Document,
    /// A document (PDF) signed by the customer; a customer's online confirmation counts too
    /// when `or_customer_confirmation` is set.
    SignedDocument {
        #[serde(default)]
        or_customer_confirmation: bool,
    },
    /// Every item checked off; an item with `needs_contact` must name a contact whose
    /// seniority is on record.
    Checklist { items: Vec<ChecklistItem> },
    /// One approval by each of `roles` (several roles = countersign). With `bound_to_quote`,
    /// each approval names the quote content hash it approved, and only approvals of the
    /// current hash count: any price edit voids them.
    Approval {
        roles: Vec<Role>,
        #[serde(default)]
        bound_to_quote: bool,
    },
    /// A quote with a system-issued number exists for the deal.
    QuoteNumber,
    /// The customer confirmed the current quote revision online.
    CustomerConfirmation,
    /// A verified e-signature provider callback for the contract.
    ESignature,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistItem {
    /// Stable key, e.g. `decision_maker`.
    pub key: String,
    pub label_en: String,
    pub label_zh: String,
    #[serde(default)]
    pub needs_contact: bool,
}

impl Requirement {
    pub fn kind(&self) -> &'static str {
        match self {
            Requirement::VisitBooking => "visit_booking",
            Requirement::PhotoSet { .. } => "photo_set",
            Requirement::Document => "document",
            Requirement::SignedDocument { .. } => "signed_document",
            Requirement::Checklist { .. } => "checklist",
            Requirement::Approval { .. } => "approval",
            Requirement::QuoteNumber => "quote_number",
            Requirement::CustomerConfirmation => "customer_confirmation",
            Requirement::ESignature => "e_signature",
        }
    }

    /// Whether a supervisor's override may stand in for this requirement while it is unmet.
    /// What the rep's own work proves (a visit, photos, documents, a checklist, an internal
    /// review whose reviewer may be missing) may be overridden, with a reason; so may the
    /// e-signature, since many contracts in China are still stamped on paper (合同用印) and a
    /// provider's callback can be lost. What the brief names as another party's proof never is:
    /// the countersigned approval of the quoted price, the system's quote number, the customer's
    /// online confirmation of the quote. An override there would say the customer agreed when
    /// nobody asked them.
    pub fn overridable(&self) -> bool {
        match self {
            Requirement::VisitBooking
            | Requirement::PhotoSet { .. }
            | Requirement::Document
            | Requirement::SignedDocument { .. }
            | Requirement::Checklist { .. }
            | Requirement::ESignature => true,
            Requirement::Approval { bound_to_quote, .. } => !bound_to_quote,
            Requirement::QuoteNumber | Requirement::CustomerConfirmation => false,
        }
    }
}
