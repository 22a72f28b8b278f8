//! The `iam_role` kind's properties (its driver is the engine's `aws::iam_role`).

use crate::{Handle, Input, Spec};
use serde::{Deserialize, Serialize};

/// One statement of a policy: named actions on named resources.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Statement {
    pub actions: Vec<String>,
    pub resources: Vec<Input<String>>,
}

impl Statement {
    /// `actions` on `resources`.
    pub fn allow(actions: &[&str], resources: Vec<Input<String>>) -> Self {
        Self { actions: actions.iter().map(|a| a.to_string()).collect(), resources }
    }
}

/// A role a service can assume, with an inline policy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IamRoleSpec {
    pub name: String,
    /// The service principal allowed to assume the role, e.g. `lambda.amazonaws.com`. The trust
    /// policy is that one statement; a refresh reports any other trust policy as a whole.
    pub service: String,
    pub statements: Vec<Statement>,
    /// Inline policies besides the stack's own: none are declared, so one added out of band is
    /// drift and an update deletes it.
    #[serde(default)]
    pub other_inline_policies: Vec<String>,
    /// Managed policies attached (ARNs): an update attaches those missing and detaches any other.
    #[serde(default)]
    pub managed_policy_arns: Vec<String>,
}

impl Spec for IamRoleSpec {
    const KIND: &'static str = "iam_role";
}

impl Handle<IamRoleSpec> {
    /// The role's ARN.
    pub fn arn(&self) -> Input<String> {
        self.output("arn")
    }
}
